#!/usr/bin/python3
"""PyTorch DistributedDataParallel (gloo) baseline for tests/bench/train_bench.cc.

    /usr/bin/python3 tests/bench/ddp_baseline.py --world-size 2 [--steps 40] [--warmup 5]
        [--batch 32] [--threads 1] [--samples 1024] [--bind none|core]

Debian's python3-torch (1.13) lives under /usr/bin/python3. Same model (jobs/day_night.yaml:
Conv2d 3->16 k3 p1, BatchNorm, ReLU, MaxPool2, then 16->32 and 32->32 the same way, Flatten,
Linear(32*8*8, 64), ReLU, Linear(64, 1)), same in-memory data (torch.manual_seed(0); images =
rand(samples, 3, 64, 64); labels = rand(samples) < 0.5: the same values as LibTorch's, see
data_checksum), same batch per rank, same rows per rank and step, Adam(lr 0.002), logit loss
(BCEWithLogitsLoss), torch.set_num_threads(threads). DDP runs with the settings closest to
dtrain's reducer: bucket_cap_mb=25, gradient_as_bucket_view=True (dtrain's gradients also live in
the bucket), broadcast_buffers=False (dtrain does not broadcast BatchNorm statistics every step,
only before evaluation and checkpoints). The ranks are processes started with
torch.multiprocessing.spawn and rendezvous over TCP on 127.0.0.1 with a free port.
Timing: after --warmup steps a barrier, then --steps timed steps; samples/s per rank = steps *
batch / that rank's time, total = world * steps * batch / slowest rank's time. Rank 0 prints one
JSON line with the same keys as train_bench.
"""

import argparse
import datetime
import faulthandler
import json
import os
import socket
import statistics
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn


def build_model():
    layers = []
    channels = 3
    for out in (16, 32, 32):
        layers += [nn.Conv2d(channels, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU(),
                   nn.MaxPool2d(2)]
        channels = out
    layers += [nn.Flatten(), nn.Linear(32 * 8 * 8, 64), nn.ReLU(), nn.Linear(64, 1)]
    return nn.Sequential(*layers)


def worker(rank, args, port, queue):
    # A run that stalls prints every thread's stack and exits instead of hanging the benchmark.
    faulthandler.dump_traceback_later(args.watchdog, exit=True)
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    if args.bind == "core":
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpus[rank % len(cpus)]})
    torch.set_num_threads(args.threads)
    # A bounded timeout: a stuck rendezvous or collective fails the run instead of hanging it.
    dist.init_process_group("gloo", rank=rank, world_size=args.world_size,
                            timeout=datetime.timedelta(seconds=120))
    world = args.world_size

    torch.manual_seed(0)
    images = torch.rand(args.samples, 3, 64, 64)
    labels = (torch.rand(args.samples) < 0.5).to(torch.float32)
    checksum = images.sum().item() + labels.sum().item()

    torch.manual_seed(1)
    model = build_model()
    model.train()
    num_params = sum(p.numel() for p in model.parameters())
    ddp = nn.parallel.DistributedDataParallel(model, bucket_cap_mb=25,
                                              gradient_as_bucket_view=True,
                                              broadcast_buffers=False)
    optimizer = torch.optim.Adam(ddp.parameters(), lr=0.002)
    criterion = nn.BCEWithLogitsLoss()

    step_seconds = []
    start = 0.0
    loss_value = 0.0
    for step in range(args.warmup + args.steps):
        if step == args.warmup:
            dist.barrier()
            start = time.perf_counter()
        step_start = time.perf_counter()
        first = (step * world + rank) * args.batch % args.samples
        index = (torch.arange(args.batch) + first).remainder(args.samples)
        x = images.index_select(0, index)
        y = labels.index_select(0, index)
        optimizer.zero_grad()
        loss = criterion(ddp(x).squeeze(1), y)
        loss.backward()
        optimizer.step()
        loss_value = loss.item()
        if step >= args.warmup:
            step_seconds.append(time.perf_counter() - step_start)
    elapsed = time.perf_counter() - start

    gathered = [None] * world
    dist.all_gather_object(gathered, elapsed)
    if rank == 0:
        per_rank_samples = args.steps * args.batch
        queue.put({
            "framework": "pytorch-ddp-gloo",
            "torch": torch.__version__,
            "world_size": world,
            "threads": args.threads,
            "batch_per_rank": args.batch,
            "warmup_steps": args.warmup,
            "steps": args.steps,
            "parameters": num_params,
            "samples_per_s_total": world * per_rank_samples / max(gathered),
            "samples_per_s_per_rank": [per_rank_samples / e for e in gathered],
            "step_ms_median": statistics.median(step_seconds) * 1e3,
            "final_loss": loss_value,
            "data_checksum": checksum,
        })
    dist.barrier()
    sys.stdout.flush()
    # Leave without running destructors: tearing down DDP + ProcessGroupGloo here hangs in about one
    # run in four on this machine (seen with faulthandler: the worker stuck returning from worker()).
    # The result is already in the pipe (SimpleQueue.put writes synchronously).
    os._exit(0)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--world-size", type=int, default=1)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--samples", type=int, default=1024)
    parser.add_argument("--watchdog", type=float, default=180,
                        help="seconds after which a stalled run dumps its stacks and exits")
    parser.add_argument("--bind", choices=("none", "core"), default="none",
                        help="core: pin rank r to the r-th allowed CPU (like mpirun --bind-to core)")
    args = parser.parse_args()
    if args.samples < args.batch or args.world_size < 1 or args.steps < 1:
        parser.error("need samples >= batch, world-size >= 1, steps >= 1")
    # gloo picks its network interface from the host name; loopback always works here.
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    faulthandler.dump_traceback_later(args.watchdog + 10, exit=True)
    ctx = mp.get_context("spawn")
    queue = ctx.SimpleQueue()
    mp.start_processes(worker, args=(args, free_port(), queue), nprocs=args.world_size,
                       join=True, start_method="spawn")
    print(json.dumps(queue.get()))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
