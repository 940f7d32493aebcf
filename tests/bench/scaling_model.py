#!/usr/bin/python3
"""An alpha-beta model of data-parallel training: bucketed ring all-reduce overlapping backward.

    tests/bench/scaling_model.py [--plot docs/scaling.png] [--dtrain-bench FILE]

What it does, in order (each step prints its table; docs/SCALING.md explains the figures):
  1. Calibrates the all-reduce cost T(n) = 2(p-1)*alpha + 2(p-1)/p * n/beta + overhead on dtrain's
     own measurements (reducer_bench, 2 ranks; default: the figures recorded in docs/BENCHMARKS.md
     section 3.1, or a file of reducer_bench output) and checks the bucketed prediction against
     the measured reducer times.
  2. Models Horovod 0.11-era tensor fusion (5 ms cycle, 64 MB buffer, a negotiation per cycle) on
     128 servers x 4 P100 over 25 Gbit/s RoCE, with per-layer gradient sizes and backward times of
     Inception V3, ResNet-101 and VGG-16 computed from their architectures. Two unknowns (the
     per-hop latency and the slow-down of backward while NCCL runs beside it) are fitted on
     Horovod's published 128-GPU efficiencies only; the 512-GPU efficiencies are then predicted
     and compared with the published ones (target: within 5 points).
  3. Predicts dtrain's efficiency on the same machines with its own bucketing (1 MB first bucket,
     25 MB cap, each bucket sent as soon as its last gradient is ready, no per-cycle negotiation),
     and varies each knob by 2x to say which one matters most.
Pure Python 3; the plot needs matplotlib (Debian python3-matplotlib, installed by
DTRAIN_WITH_BENCH_DEPS=1 deploy/install-deps.sh).
"""
import argparse
import math
import re
import sys

MB = 1 << 20

# ---------------------------------------------------------------------------------------------
# 1. Layer tables: (name, parameters, forward multiply-accumulates), in forward order.
# ---------------------------------------------------------------------------------------------


class Net:
    def __init__(self, name):
        self.name = name
        self.layers = []  # (name, params, macs)

    def conv(self, name, cin, cout, kh, kw, hout, wout, bn=True, bias=False):
        params = kh * kw * cin * cout + (2 * cout if bn else 0) + (cout if bias else 0)
        self.layers.append((name, params, kh * kw * cin * cout * hout * wout))

    def fc(self, name, fin, fout):
        self.layers.append((name, fin * fout + fout, fin * fout))

    @property
    def params(self):
        return sum(l[1] for l in self.layers)

    @property
    def macs(self):
        return sum(l[2] for l in self.layers)


def vgg16():
    net = Net("VGG-16")
    size, cin = 224, 3
    for stage, (width, convs) in enumerate([(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]):
        for i in range(convs):
            net.conv(f"conv{stage + 1}_{i + 1}", cin, width, 3, 3, size, size, bn=False, bias=True)
            cin = width
        size //= 2
    net.fc("fc6", 512 * 7 * 7, 4096)
    net.fc("fc7", 4096, 4096)
    net.fc("fc8", 4096, 1000)
    return net


def resnet101():
    net = Net("ResNet-101")
    net.conv("conv1", 3, 64, 7, 7, 112, 112)
    size, cin = 56, 64
    for stage, (width, blocks) in enumerate([(64, 3), (128, 4), (256, 23), (512, 3)]):
        for b in range(blocks):
            stride = 2 if (b == 0 and stage > 0) else 1
            out = size // stride
            tag = f"layer{stage + 1}.{b}"
            net.conv(tag + ".conv1", cin, width, 1, 1, size, size)
            net.conv(tag + ".conv2", width, width, 3, 3, out, out)
            net.conv(tag + ".conv3", width, width * 4, 1, 1, out, out)
            if b == 0:
                net.conv(tag + ".downsample", cin, width * 4, 1, 1, out, out)
            cin, size = width * 4, out
    net.fc("fc", 2048, 1000)
    return net


def inception_v3():
    """Inception V3 at 299x299 without the auxiliary head (23.8 M parameters)."""
    net = Net("Inception V3")
    c = net.conv
    c("Conv2d_1a_3x3", 3, 32, 3, 3, 149, 149)
    c("Conv2d_2a_3x3", 32, 32, 3, 3, 147, 147)
    c("Conv2d_2b_3x3", 32, 64, 3, 3, 147, 147)
    c("Conv2d_3b_1x1", 64, 80, 1, 1, 73, 73)
    c("Conv2d_4a_3x3", 80, 192, 3, 3, 71, 71)
    cin, s = 192, 35
    for tag, pool in (("Mixed_5b", 32), ("Mixed_5c", 64), ("Mixed_5d", 64)):  # Inception-A
        c(tag + ".b1x1", cin, 64, 1, 1, s, s)
        c(tag + ".b5x5_1", cin, 48, 1, 1, s, s)
        c(tag + ".b5x5_2", 48, 64, 5, 5, s, s)
        c(tag + ".b3x3dbl_1", cin, 64, 1, 1, s, s)
        c(tag + ".b3x3dbl_2", 64, 96, 3, 3, s, s)
        c(tag + ".b3x3dbl_3", 96, 96, 3, 3, s, s)
        c(tag + ".pool", cin, pool, 1, 1, s, s)
        cin = 64 + 64 + 96 + pool
    c("Mixed_6a.b3x3", cin, 384, 3, 3, 17, 17)  # Inception-B (grid reduction 35 -> 17)
    c("Mixed_6a.b3x3dbl_1", cin, 64, 1, 1, 35, 35)
    c("Mixed_6a.b3x3dbl_2", 64, 96, 3, 3, 35, 35)
    c("Mixed_6a.b3x3dbl_3", 96, 96, 3, 3, 17, 17)
    cin, s = 384 + 96 + cin, 17
    for tag, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
        c(tag + ".b1x1", cin, 192, 1, 1, s, s)  # Inception-C
        c(tag + ".b7x7_1", cin, c7, 1, 1, s, s)
        c(tag + ".b7x7_2", c7, c7, 1, 7, s, s)
        c(tag + ".b7x7_3", c7, 192, 7, 1, s, s)
        c(tag + ".b7x7dbl_1", cin, c7, 1, 1, s, s)
        c(tag + ".b7x7dbl_2", c7, c7, 7, 1, s, s)
        c(tag + ".b7x7dbl_3", c7, c7, 1, 7, s, s)
        c(tag + ".b7x7dbl_4", c7, c7, 7, 1, s, s)
        c(tag + ".b7x7dbl_5", c7, 192, 1, 7, s, s)
        c(tag + ".pool", cin, 192, 1, 1, s, s)
        cin = 768
    c("Mixed_7a.b3x3_1", cin, 192, 1, 1, 17, 17)  # Inception-D (17 -> 8)
    c("Mixed_7a.b3x3_2", 192, 320, 3, 3, 8, 8)
    c("Mixed_7a.b7x7x3_1", cin, 192, 1, 1, 17, 17)
    c("Mixed_7a.b7x7x3_2", 192, 192, 1, 7, 17, 17)
    c("Mixed_7a.b7x7x3_3", 192, 192, 7, 1, 17, 17)
    c("Mixed_7a.b7x7x3_4", 192, 192, 3, 3, 8, 8)
    cin, s = 320 + 192 + cin, 8
    for tag in ("Mixed_7b", "Mixed_7c"):  # Inception-E
        c(tag + ".b1x1", cin, 320, 1, 1, s, s)
        c(tag + ".b3x3_1", cin, 384, 1, 1, s, s)
        c(tag + ".b3x3_2a", 384, 384, 1, 3, s, s)
        c(tag + ".b3x3_2b", 384, 384, 3, 1, s, s)
        c(tag + ".b3x3dbl_1", cin, 448, 1, 1, s, s)
        c(tag + ".b3x3dbl_2", 448, 384, 3, 3, s, s)
        c(tag + ".b3x3dbl_3a", 384, 384, 1, 3, s, s)
        c(tag + ".b3x3dbl_3b", 384, 384, 3, 1, s, s)
        c(tag + ".pool", cin, 192, 1, 1, s, s)
        cin = 320 + 768 + 768 + 192
    net.fc("fc", 2048, 1000)
    return net


# Known totals (torchvision; Simonyan & Zisserman; Szegedy et al.): the tables must match them.
KNOWN = {"VGG-16": (138.36e6, 15.47e9), "ResNet-101": (44.55e6, 7.80e9),
         "Inception V3": (23.83e6, 5.71e9)}

# Single-P100 training throughput, synthetic data, batch 64 (TensorFlow's published benchmarks,
# DGX-1 with SXM2 P100s, May 2017: Inception V3 142, VGG-16 154, ResNet-50 219, ResNet-152 91.8
# images/s). ResNet-101 is not in that table: its time per image is interpolated between
# ResNet-50 and ResNet-152 by multiply-accumulates (4.1, 7.8, 11.5 G) -> 129 images/s.
# Horovod's servers held 4 Pascal GPUs each, which means PCIe P100s (SXM2 boards come in DGX-1s
# of 8): their FP32 peak is 9.3 TFLOPS against 10.6, so the figures are scaled by 9.3 / 10.6.
# Cross-check: Horovod's own ResNet-101 example prints 1656.82 images/s on 16 GPUs, 103.6 per
# GPU, which is 92 % of the 113 images/s this gives.
PCIE_OVER_SXM2 = 9.3 / 10.6
P100_IMAGES_PER_S = {name: PCIE_OVER_SXM2 * v for name, v in {
    "Inception V3": 142.0, "VGG-16": 154.0,
    "ResNet-101": 1.0 / (1 / 219.0 + (7.80 - 4.11) / (11.5 - 4.11) * (1 / 91.8 - 1 / 219.0)),
}.items()}
BATCH = 64

# Horovod's published scaling efficiencies (README / docs/benchmarks: 32 and 128 servers with
# 4 Pascal GPUs each, RoCE-capable 25 Gbit/s, tf_cnn_benchmarks, batch 64 per GPU).
HOROVOD = {128: {"Inception V3": 0.90, "ResNet-101": 0.90, "VGG-16": 0.79},
           512: {"Inception V3": 0.90, "ResNet-101": 0.90, "VGG-16": 0.68}}


# ---------------------------------------------------------------------------------------------
# 2. The cost model.
# ---------------------------------------------------------------------------------------------


class Link:
    """Ring all-reduce cost on p ranks: 2(p-1) latency hops plus 2(p-1)/p of the bytes over the
    slowest link, plus a fixed per-collective overhead (launch, hand-off to a progress thread)."""

    def __init__(self, alpha_s, beta_bytes_per_s, overhead_s=0.0):
        self.alpha, self.beta, self.overhead = alpha_s, beta_bytes_per_s, overhead_s

    def allreduce(self, nbytes, p):
        if p <= 1:
            return 0.0
        return 2 * (p - 1) * self.alpha + 2 * (p - 1) / p * nbytes / self.beta + self.overhead


class Machine:
    """One rank's compute: a step of t1 seconds, a third forward and two thirds backward, each
    layer's share proportional to its multiply-accumulates. A distributed step also pays a fixed
    overhead of `overhead` x t1 that does not depend on the bytes sent (synchronising the ranks,
    the framework's bookkeeping); it is fitted, not derived."""

    def __init__(self, net, t1, overhead=0.0):
        self.net, self.t1, self.overhead = net, t1, overhead
        total = net.macs
        self.fwd = t1 / 3.0
        self.bwd_layer = [2.0 * t1 / 3.0 * l[2] / total for l in net.layers]


def gradient_ready_times(machine, bytes_per_param):
    """(time, bytes) of each gradient as backward produces them, last layer first."""
    t = machine.fwd
    out = []
    for i in reversed(range(len(machine.net.layers))):
        t += machine.bwd_layer[i]
        out.append((t, machine.net.layers[i][1] * bytes_per_param))
    return out


def simulate(machine, link, p, engine, bytes_per_param=4):
    """Returns the step time: backward and the one communication stream run side by side; the
    engine turns the gradients' (ready time, bytes) into the stream's busy intervals; the step
    ends when both are done, plus the fixed distributed overhead."""
    if p <= 1:
        return machine.t1
    grads = gradient_ready_times(machine, bytes_per_param)
    busy = engine(grads, p, link)
    return max(grads[-1][0], busy[-1][1]) + machine.overhead * machine.t1


def horovod_engine(negotiation, cycle_s=0.005, fusion_bytes=64 * MB):
    """Horovod 0.11-0.13's background thread, one loop per cycle: wait for the next tick, agree
    with every rank (through rank 0) on which tensors all of them have ready, then all-reduce
    those, fused into buffers of at most fusion_bytes, one after another, before the next tick.
    Negotiation and communication are serial on that thread."""

    def run(grads, p, link):
        neg = negotiation(p)
        busy = []
        i, t, tick = 0, 0.0, 0.0
        while i < len(grads):
            tick = max(tick + cycle_s, t)
            if grads[i][0] > tick:  # nothing ready: sleep to the first tick after it
                tick = math.ceil(grads[i][0] / cycle_s) * cycle_s
            t = tick + neg
            buf = 0
            while i < len(grads) and grads[i][0] <= tick:
                if buf and buf + grads[i][1] > fusion_bytes:
                    busy.append((t, t + link.allreduce(buf, p)))
                    t, buf = busy[-1][1], 0
                buf += grads[i][1]
                i += 1
            busy.append((t, t + link.allreduce(buf, p)))
            t = busy[-1][1]
        return busy

    return run


def dtrain_engine(first_bucket_bytes=1 * MB, cap_bytes=25 * MB):
    """dtrain's Reducer: buckets filled walking the gradients in backward order, the first capped
    at first_bucket_bytes and the rest at cap_bytes (a larger tensor gets its own); each bucket
    is sent as soon as its last gradient is ready, after the previous one on the stream. The
    layout is fixed at start-up (ranks check it once), so there is no per-step negotiation."""

    def run(grads, p, link):
        busy, buf, cap, last_ready, free = [], 0, first_bucket_bytes, 0.0, 0.0

        def send(ready, nbytes):
            start = max(ready, free)
            busy.append((start, start + link.allreduce(nbytes, p)))
            return busy[-1][1]

        for ready, nbytes in grads:
            if buf and buf + nbytes > cap:
                free = send(last_ready, buf)
                buf, cap = 0, cap_bytes
            buf += nbytes
            last_ready = ready
        if buf:
            send(last_ready, buf)
        return busy

    return run


def efficiency(net, link, p, engine, overhead, bytes_per_param=4):
    t1 = BATCH / P100_IMAGES_PER_S[net.name]
    machine = Machine(net, t1, overhead)
    return t1 / simulate(machine, link, p, engine, bytes_per_param)


# ---------------------------------------------------------------------------------------------
# 3. Calibration on dtrain's own MPI figures.
# ---------------------------------------------------------------------------------------------

# docs/BENCHMARKS.md 3.1 (2026-11-28, 2-core VM, 2 ranks, shared memory): bytes, buckets,
# raw MPI_Allreduce microseconds, reducer busbw GB/s. 64 MB is left out: Open MPI page-faults a
# fresh temporary buffer on every 64 MB call (explained there), not a property of the link.
DTRAIN_BENCH = [(4096, 1, 3.6, 0.408), (16384, 1, 14.9, 0.786), (65536, 1, 23.4, 2.207),
                (262144, 1, 53.7, 4.031), (1048576, 1, 197.1, 5.568), (4194304, 2, 775.6, 5.414),
                (16777216, 2, 2988.7, 5.462), (582788, 1, 102.9, 5.352)]


def read_bench(path):
    rows = []
    pat = re.compile(r"^\S+\s+(\d+)\s+(\d+)\s+([\d.]+)\s+\|\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+([\d.]+)")
    with open(path) as f:
        for line in f:
            m = pat.match(line.strip())
            if m and int(m.group(1)) < 64 * MB:
                rows.append((int(m.group(1)), int(m.group(2)), float(m.group(3)), float(m.group(4))))
    if not rows:
        sys.exit(f"scaling_model: {path}: no reducer_bench rows (size bytes buckets raw_us | ...)")
    return rows


def fit_alpha_beta(rows, p=2):
    """Least squares of raw time = a + b * n with a = 2(p-1) alpha and b = 2(p-1)/p / beta,
    weighted by 1/time so that small and large messages count alike (relative error)."""
    sw = sx = sy = sxx = sxy = 0.0
    for n, _, us, _ in rows:
        w = 1.0 / (us * us)
        sw += w
        sx += w * n
        sy += w * us
        sxx += w * n * n
        sxy += w * n * us
    b = (sw * sxy - sx * sy) / (sw * sxx - sx * sx)
    a = (sy - b * sx) / sw
    alpha = a * 1e-6 / (2 * (p - 1))
    beta = 2 * (p - 1) / p / (b * 1e-6)
    return alpha, beta


def calibrate_dtrain(rows):
    alpha, beta = fit_alpha_beta(rows)
    link = Link(alpha, beta)
    print("1. Calibration on dtrain's reducer_bench (2 ranks, Open MPI shared memory)")
    print(f"   fit: alpha = {alpha * 1e6:.2f} us per hop, beta = {beta / 1e9:.2f} GB/s")
    # Per-bucket overhead of the Reducer (hand-off to the progress thread), from the rows with
    # one bucket: reducer time - raw time, median.
    over = []
    for n, buckets, raw_us, red_busbw in rows:
        red_us = n / (red_busbw * 1e3)  # busbw at p = 2 equals algbw
        if buckets == 1:
            over.append(red_us - raw_us)
    over.sort()
    overhead = over[len(over) // 2] * 1e-6
    print(f"   Reducer overhead per bucket (median of one-bucket rows): {overhead * 1e6:.1f} us")
    print("   size        buckets  raw_us  model_raw  err%   reducer_us  model_reducer  err%")
    errs = []
    for n, buckets, raw_us, red_busbw in sorted(rows):
        model_raw = link.allreduce(n, 2) * 1e6
        red_us = n / (red_busbw * 1e3)
        # The Reducer splits n into its buckets (first 1 MB, then 25 MB caps as bench sizes them:
        # equal shares of n here) and pays the overhead once per bucket.
        model_red = sum(Link(alpha, beta, overhead).allreduce(n / buckets, 2)
                        for _ in range(buckets)) * 1e6
        e1 = 100 * (model_raw - raw_us) / raw_us
        e2 = 100 * (model_red - red_us) / red_us
        errs += [abs(e1), abs(e2)]
        print(f"   {n:>10}  {buckets:>7}  {raw_us:>6.1f}  {model_raw:>9.1f}  {e1:>+5.0f}   "
              f"{red_us:>10.1f}  {model_red:>13.1f}  {e2:>+5.0f}")
    errs.sort()
    print(f"   median |error| {errs[len(errs) // 2]:.0f} %, worst {errs[-1]:.0f} %")
    return alpha, beta, overhead


# ---------------------------------------------------------------------------------------------
# 4. Horovod on 512 GPUs, then dtrain on the same machines.
# ---------------------------------------------------------------------------------------------

NIC_BYTES_PER_S = 25e9 / 8  # 25 Gbit/s
GPUS_PER_SERVER = 4
SERVERS_PER_RACK = 32  # an assumption: 128 GPUs fill one rack's switch, 512 span four


class Fabric:
    """The network the ring runs on: one 25 Gbit/s NIC per server; NCCL reaches `efficiency` of
    its line rate; each rack beyond the first costs `contention` of the bandwidth (a ring over
    128 servers in several racks shares uplinks and meets ECMP collisions and PFC pauses that a
    ring inside one switch does not). alpha is the per-hop latency."""

    def __init__(self, alpha, efficiency, contention):
        self.alpha, self.efficiency, self.contention = alpha, efficiency, contention

    def link(self, p, overhead_s=0.0, bandwidth_scale=1.0):
        racks = max(1, math.ceil(p / GPUS_PER_SERVER / SERVERS_PER_RACK))
        beta = NIC_BYTES_PER_S * self.efficiency * bandwidth_scale / (
            1 + self.contention * (racks - 1))
        return Link(self.alpha, beta, overhead_s)


def negotiation(p, alpha_ctl=25e-6):
    # Horovod's coordinator: a gather of ready lists to rank 0 and a broadcast of the answer
    # over MPI on TCP, both log2(p) deep, every cycle.
    return 2 * math.log2(p) * alpha_ctl


HOROVOD_ENGINE = horovod_engine(negotiation)


def horovod_efficiency(net, fabric, p, overhead):
    return efficiency(net, fabric.link(p), p, HOROVOD_ENGINE, overhead)


def fit_horovod(nets, alpha):
    """Step 1: link efficiency and fixed overhead on the three 128-GPU figures (one rack, so no
    contention). Step 2: contention on VGG-16 at 512 GPUs, the one bandwidth-bound 512 figure.
    Inception V3 and ResNet-101 at 512 GPUs are left out of both: they are the prediction."""
    best = None
    for eff in [0.50 + 0.01 * i for i in range(46)]:  # 0.50 .. 0.95 of the line rate
        for over in [0.005 * i for i in range(41)]:  # 0 .. 20 % of a step
            fabric = Fabric(alpha, eff, 0.0)
            err = sum((horovod_efficiency(n, fabric, 128, over) - HOROVOD[128][n.name]) ** 2
                      for n in nets)
            if best is None or err < best[0]:
                best = (err, eff, over)
    _, eff, over = best
    vgg = [n for n in nets if n.name == "VGG-16"][0]
    contention = min((abs(horovod_efficiency(vgg, Fabric(alpha, eff, c), 512, over) -
                          HOROVOD[512]["VGG-16"]), c) for c in [0.01 * i for i in range(100)])[1]
    return Fabric(alpha, eff, contention), over


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--plot", help="write a PNG of efficiency against GPUs (needs matplotlib)")
    ap.add_argument("--dtrain-bench", help="reducer_bench output to calibrate on "
                    "(default: the figures recorded in docs/BENCHMARKS.md 3.1)")
    args = ap.parse_args()

    nets = [inception_v3(), resnet101(), vgg16()]
    failures = []
    print("0. Layer tables (computed from the architectures; known totals in brackets)")
    for net in nets:
        kp, km = KNOWN[net.name]
        if abs(net.params / kp - 1) > 0.005 or abs(net.macs / km - 1) > 0.005:
            failures.append(f"{net.name}: the layer table does not add up to the known totals")
        print(f"   {net.name:<13} {len(net.layers):>3} layers  {net.params / 1e6:7.2f} M params "
              f"[{kp / 1e6:.2f}]  {net.macs / 1e9:6.2f} G MACs [{km / 1e9:.2f}]  "
              f"{net.params * 4 / MB:6.1f} MB fp32 gradients  PCIe P100 "
              f"{P100_IMAGES_PER_S[net.name]:.0f} img/s, step {BATCH / P100_IMAGES_PER_S[net.name] * 1e3:.0f} ms")
    print()

    rows = read_bench(args.dtrain_bench) if args.dtrain_bench else DTRAIN_BENCH
    alpha, _, reducer_overhead = calibrate_dtrain(rows)
    print()

    fabric, over = fit_horovod(nets, alpha)
    print(f"2. Horovod (tensor fusion 64 MB, cycle 5 ms), {GPUS_PER_SERVER} P100 per server, "
          "25 Gbit/s RoCE")
    print(f"   per-hop latency: dtrain's calibrated {alpha * 1e6:.2f} us; negotiation "
          f"{negotiation(128) * 1e6:.0f} / {negotiation(512) * 1e6:.0f} us per cycle at 128 / 512")
    print(f"   fitted on the three 128-GPU figures: link efficiency {fabric.efficiency:.2f} of "
          f"25 Gbit/s ({NIC_BYTES_PER_S * fabric.efficiency / 1e9:.2f} GB/s), fixed overhead "
          f"{100 * over:.1f} % of a step")
    print(f"   fitted on VGG-16 at 512 GPUs: {100 * fabric.contention:.0f} % less bandwidth per "
          f"rack beyond the first ({SERVERS_PER_RACK} servers per rack)")
    print("   model             GPUs  published  model   diff (points)")
    worst = 0.0
    for p in (128, 512):
        for net in nets:
            e = horovod_efficiency(net, fabric, p, over)
            d = 100 * (e - HOROVOD[p][net.name])
            worst = max(worst, abs(d))
            tag = "predicted" if p == 512 and net.name != "VGG-16" else "fitted"
            print(f"   {net.name:<16} {p:>5}  {HOROVOD[p][net.name] * 100:>8.0f}%  "
                  f"{e * 100:>5.1f}%  {d:>+6.1f}  ({tag})")
    print(f"   worst difference: {worst:.1f} points (target <= 5): "
          f"{'MET' if worst <= 5 else 'MISSED'}")
    if worst > 5:
        failures.append(f"Horovod's figures reproduced only within {worst:.1f} points")
    print()

    # dtrain on the same machines: NCCL does the reduction, so the fabric is Horovod's; what
    # changes is the schedule, plus the Reducer's per-bucket hand-off measured above. The fixed
    # overhead is kept at Horovod's (nothing measures dtrain's on GPUs yet).
    def dtrain(net, p, engine=None, fab=fabric, o=over, bytes_per_param=4, bw=1.0):
        return efficiency(net, fab.link(p, reducer_overhead, bw), p, engine or dtrain_engine(),
                          o, bytes_per_param)

    print("3. dtrain's bucketing on the same 512 GPUs (1 MB first bucket, 25 MB cap)")
    print("   model             Horovod (model)  dtrain  dtrain, bf16 gradients")
    curves = {}
    for net in nets:
        h = horovod_efficiency(net, fabric, 512, over)
        print(f"   {net.name:<16} {h * 100:>14.1f}%  {dtrain(net, 512) * 100:>5.1f}%  "
              f"{dtrain(net, 512, bytes_per_param=2) * 100:>14.1f}%")
        curves[net.name] = [(p, horovod_efficiency(net, fabric, p, over), dtrain(net, p))
                            for p in (8, 16, 32, 64, 128, 256, 512)]
    print("   (bf16 gradient compression is issue 17's; dtrain does not ship it yet)")
    print()

    print("4. Which knob matters most: dtrain at 512 GPUs, each knob halved and doubled")
    knobs = [
        ("bucket cap (25 MB)", lambda n, f: dtrain(n, 512, dtrain_engine(cap_bytes=int(25 * MB * f)))),
        ("first bucket (1 MB)", lambda n, f: dtrain(n, 512, dtrain_engine(first_bucket_bytes=int(MB * f)))),
        ("link bandwidth", lambda n, f: dtrain(n, 512, bw=f)),
        ("per-hop latency", lambda n, f: dtrain(n, 512, fab=Fabric(alpha * f, fabric.efficiency,
                                                                      fabric.contention))),
        ("fabric contention", lambda n, f: dtrain(n, 512, fab=Fabric(alpha, fabric.efficiency,
                                                                        fabric.contention * f))),
        ("fixed overhead", lambda n, f: dtrain(n, 512, o=over * f)),
        ("gradient bytes", lambda n, f: dtrain(n, 512, bytes_per_param=4 * f)),
    ]
    print("   knob (x0.5 / x2, points)  " + "".join(f"{n.name:>18}" for n in nets))
    spread = {}
    for name, run in knobs:
        cells = []
        for net in nets:
            base = dtrain(net, 512)
            lo, hi = run(net, 0.5) - base, run(net, 2.0) - base
            cells.append(f"{100 * lo:+6.1f} / {100 * hi:+5.1f}")
            spread[name] = max(spread.get(name, 0.0), abs(lo), abs(hi))
        print(f"   {name:<26}" + "".join(f"{c:>18}" for c in cells))
    top = max(spread, key=spread.get)
    print(f"   largest effect: {top} ({100 * spread[top]:.1f} points)")

    if args.plot:
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            sys.exit("scaling_model: --plot needs matplotlib (DTRAIN_WITH_BENCH_DEPS=1 "
                     "deploy/install-deps.sh installs python3-matplotlib)")
        fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
        colors = {"Inception V3": "tab:blue", "ResNet-101": "tab:green", "VGG-16": "tab:red"}
        for name, pts in curves.items():
            ps = [q[0] for q in pts]
            ax.plot(ps, [100 * q[1] for q in pts], "--", color=colors[name],
                    label=f"{name}, Horovod (model)")
            ax.plot(ps, [100 * q[2] for q in pts], "-", color=colors[name],
                    label=f"{name}, dtrain (model)")
            for p in (128, 512):
                ax.plot([p], [100 * HOROVOD[p][name]], "o", color=colors[name])
        ax.plot([], [], "o", color="gray", label="Horovod, published")
        ax.set_xscale("log", base=2)
        ax.set_xticks([8, 16, 32, 64, 128, 256, 512])
        ax.set_xticklabels(["8", "16", "32", "64", "128", "256", "512"])
        ax.set_xlabel("GPUs (4 PCIe P100 per server, 25 Gbit/s RoCE)")
        ax.set_ylabel("scaling efficiency (%)")
        ax.set_ylim(50, 101)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2, loc="lower left")
        ax.set_title("Ring all-reduce overlapping backward: alpha-beta model")
        fig.tight_layout()
        fig.savefig(args.plot)
        print(f"wrote {args.plot}")
    for failure in failures:
        print(f"scaling_model: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
