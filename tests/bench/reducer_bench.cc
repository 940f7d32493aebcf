// reducer_bench: all-reduce bandwidth of dtrain's gradient path against raw MPI_Allreduce.
//
//   mpirun -np 2 build/bin/reducer_bench [--iters 20] [--warmup 5] [--max-mb 64]
//
// For each message size (4 KB .. 64 MB, powers of 4) and for the gradients of the day/night model
// it times, interleaved per iteration (A B C D, rotating the order):
//   raw      MPI_Allreduce(MPI_IN_PLACE, float, SUM) on MPI_COMM_WORLD, from the calling thread
//   comm:sum MpiCommunicator::AllReduce(kSum): the same bytes through dtrain's progress thread
//   comm:avg MpiCommunicator::AllReduce(kAvg): plus the division by the world size
//   reducer  Reducer::PrepareForBackward(true) + FinishBackward() on parameters whose gradients
//            sum to the size (4 Linear-like layers, weight + bias each), bucketed by
//            ComputeBucketLayout with the default caps (first bucket 1 MB, then 25 MB): the real
//            Reducer launching every bucket's averaging all-reduce in order and waiting for them.
//            (No backward runs, so nothing overlaps: this is the reducer's communication cost.)
// One sample = `reps` back-to-back operations after an MPI_Barrier, divided by reps (reps > 1 only
// below 2 MB, to lift tiny messages above timer noise); a sample's time is the slowest rank's.
// Reported: median of --iters samples after --warmup; algbw = bytes / time and
// busbw = algbw * 2(n-1)/n (nccl-tests definitions), in GB/s (1e9 bytes/s).
#include <mpi.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "runtime/comm/mpi_communicator.h"
#include "runtime/spec/job_spec.h"
#include "workers/models/cnn.h"
#include "workers/trainer/reducer.h"

namespace {

using dtrain::Status;
using dtrain::comm::BufferRef;
using dtrain::comm::DataType;
using dtrain::comm::MpiCommunicator;
using dtrain::comm::ReduceOp;
using dtrain::trainer::NamedTensor;
using dtrain::trainer::Reducer;

struct Options {
  int iters = 20;
  int warmup = 5;
  size_t min_bytes = 4 << 10;
  size_t max_bytes = 64 << 20;
};

void Check(const Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "reducer_bench: %s: %s\n", what, s.ToString().c_str());
    dtrain::comm::MpiEnvironment::Abort(1);
  }
}

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::string HumanBytes(size_t bytes) {
  char text[32];
  if (bytes >= (1 << 20) && bytes % (1 << 20) == 0) {
    std::snprintf(text, sizeof(text), "%zu MB", bytes >> 20);
  } else if (bytes >= (1 << 10) && bytes % (1 << 10) == 0) {
    std::snprintf(text, sizeof(text), "%zu KB", bytes >> 10);
  } else {
    std::snprintf(text, sizeof(text), "%zu B", bytes);
  }
  return text;
}

// Four Linear-like layers (weight + bias) whose float32 gradients total exactly `bytes`.
std::vector<NamedTensor> SyntheticLayers(size_t bytes) {
  const int64_t total = static_cast<int64_t>(bytes / sizeof(float));
  const int64_t layers = 4;
  std::vector<NamedTensor> params;
  int64_t used = 0;
  for (int64_t l = 0; l < layers; ++l) {
    const int64_t share = l + 1 < layers ? total / layers : total - used;
    const int64_t bias = std::min<int64_t>(64, share / 4);
    params.push_back({"layer" + std::to_string(l) + ".weight",
                      torch::ones({share - bias}).requires_grad_(true)});
    params.push_back(
        {"layer" + std::to_string(l) + ".bias", torch::ones({bias}).requires_grad_(true)});
    used += share;
  }
  return params;
}

// One row of the table: the same bytes through every path.
struct Case {
  std::string label;
  size_t bytes = 0;
  std::vector<NamedTensor> params;  // kept to refill gradients
  std::unique_ptr<Reducer> reducer;
  std::vector<float> raw, comm_sum, comm_avg;
};

struct Row {
  std::string label;
  size_t bytes;
  size_t buckets;
  double t_raw, t_sum, t_avg, t_reducer;  // median seconds per operation
};

Row RunCase(Case& c, MpiCommunicator& comm, const Options& o) {
  const size_t count = c.bytes / sizeof(float);
  const int reps = static_cast<int>(std::clamp<size_t>((2u << 20) / c.bytes, 1, 64));

  auto refill_grads = [&] {
    torch::NoGradGuard no_grad;
    for (auto& p : c.params) p.tensor.mutable_grad().fill_(1.0f);
  };
  // Each path: refill its buffer (outside the timer), then one operation.
  struct Path {
    std::function<void()> refill;
    std::function<void()> op;
    std::vector<double> times;
  };
  std::vector<Path> paths(4);
  paths[0] = {[&] { std::fill(c.raw.begin(), c.raw.end(), 1.0f); },
              [&] {
                int rc = MPI_Allreduce(MPI_IN_PLACE, c.raw.data(), static_cast<int>(count),
                                       MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
                if (rc != MPI_SUCCESS) MPI_Abort(MPI_COMM_WORLD, 1);
              },
              {}};
  paths[1] = {[&] { std::fill(c.comm_sum.begin(), c.comm_sum.end(), 1.0f); },
              [&] {
                Check(
                    comm.AllReduce({c.comm_sum.data(), count, DataType::kFloat32}, ReduceOp::kSum),
                    "communicator allreduce (sum)");
              },
              {}};
  paths[2] = {[&] { std::fill(c.comm_avg.begin(), c.comm_avg.end(), 1.0f); },
              [&] {
                Check(
                    comm.AllReduce({c.comm_avg.data(), count, DataType::kFloat32}, ReduceOp::kAvg),
                    "communicator allreduce (avg)");
              },
              {}};
  paths[3] = {refill_grads,
              [&] {
                c.reducer->PrepareForBackward(/*sync=*/true);
                Check(c.reducer->FinishBackward(), "reducer FinishBackward");
              },
              {}};

  for (int it = 0; it < o.warmup + o.iters; ++it) {
    for (size_t k = 0; k < paths.size(); ++k) {
      Path& p = paths[(k + it) % paths.size()];  // rotate so no path always goes first
      p.refill();
      MPI_Barrier(MPI_COMM_WORLD);
      const double t0 = Now();
      for (int r = 0; r < reps; ++r) p.op();
      const double t = (Now() - t0) / reps;
      if (it >= o.warmup) p.times.push_back(t);
    }
  }
  // A sample lasts as long as its slowest rank.
  for (Path& p : paths) {
    MPI_Allreduce(MPI_IN_PLACE, p.times.data(), static_cast<int>(p.times.size()), MPI_DOUBLE,
                  MPI_MAX, MPI_COMM_WORLD);
  }
  return {c.label,
          c.bytes,
          c.reducer->buckets().size(),
          Median(paths[0].times),
          Median(paths[1].times),
          Median(paths[2].times),
          Median(paths[3].times)};
}

bool ParseOptions(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    if (a == "--iters" && (v = next())) {
      o->iters = std::atoi(v);
    } else if (a == "--warmup" && (v = next())) {
      o->warmup = std::atoi(v);
    } else if (a == "--max-mb" && (v = next())) {
      o->max_bytes = static_cast<size_t>(std::atof(v) * (1 << 20));
    } else if (a == "--min-kb" && (v = next())) {
      o->min_bytes = static_cast<size_t>(std::atof(v) * (1 << 10));
    } else {
      std::fprintf(stderr,
                   "usage: mpirun -np 2 reducer_bench [--iters N>=20] [--warmup N] "
                   "[--min-kb K] [--max-mb M]\n");
      return false;
    }
  }
  return o->iters >= 1 && o->warmup >= 0 && o->min_bytes >= 64 && o->max_bytes >= o->min_bytes;
}

}  // namespace

int main(int argc, char** argv) {
  auto env_or = dtrain::comm::MpiEnvironment::Init(&argc, &argv);
  if (!env_or.ok()) {
    std::fprintf(stderr, "reducer_bench: %s\n", env_or.status().ToString().c_str());
    return 1;
  }
  std::unique_ptr<dtrain::comm::MpiEnvironment> env = std::move(*env_or);
  Options o;
  if (!ParseOptions(argc, argv, &o)) return 2;
  const int rank = env->world_rank();
  const int world = env->world_size();
  if (world < 2) {
    if (rank == 0) std::fprintf(stderr, "reducer_bench: run it with mpirun -np 2 (or more)\n");
    return 2;
  }
  torch::set_num_threads(1);  // the avg division and refills stay on one core, like the trainer's

  auto comm_or = MpiCommunicator::Create(MPI_COMM_WORLD, std::chrono::minutes(5));
  Check(comm_or.status(), "MpiCommunicator::Create");
  std::unique_ptr<MpiCommunicator> comm = std::move(*comm_or);

  std::vector<Row> rows;
  auto run = [&](std::string label, std::vector<NamedTensor> params,
                 std::vector<NamedTensor> buffers) {
    Case c;
    c.label = std::move(label);
    for (const auto& p : params) c.bytes += p.tensor.numel() * p.tensor.element_size();
    c.params = params;
    // As the trainer configures it: buckets are summed, the loss carries the 1/world factor.
    dtrain::trainer::ReducerOptions reducer_options;
    reducer_options.average_in_reducer = false;
    auto reducer_or =
        Reducer::Create(*comm, std::move(params), std::move(buffers), reducer_options);
    Check(reducer_or.status(), "Reducer::Create");
    c.reducer = std::move(*reducer_or);
    const size_t count = c.bytes / sizeof(float);
    c.raw.assign(count, 1.0f);
    c.comm_sum.assign(count, 1.0f);
    c.comm_avg.assign(count, 1.0f);
    rows.push_back(RunCase(c, *comm, o));
  };

  for (size_t bytes = o.min_bytes; bytes <= o.max_bytes; bytes *= 4) {
    run(HumanBytes(bytes), SyntheticLayers(bytes), {});
  }
  {
    // jobs/day_night.yaml's model: conv_channels [16, 32, 32], hidden [64], batch norm, 64x64x3.
    dtrain::ModelSpec spec;
    spec.conv_channels = {16, 32, 32};
    spec.hidden_units = {64};
    spec.batch_norm = true;
    torch::manual_seed(1);
    torch::nn::Sequential model = dtrain::models::BuildCnn(spec, 3, 64, 64, 1);
    std::vector<NamedTensor> params, buffers;
    for (const auto& p : model->named_parameters()) params.push_back({p.key(), p.value()});
    for (const auto& b : model->named_buffers()) buffers.push_back({b.key(), b.value()});
    run("day_night", std::move(params), std::move(buffers));
  }

  if (rank == 0) {
    const double factor = 2.0 * (world - 1) / world;
    auto busbw = [&](const Row& r, double t) { return r.bytes / t * factor / 1e9; };
    std::printf(
        "# reducer_bench: %d ranks, median of %d iterations after %d warm-up, busbw GB/s "
        "= bytes/time * 2(n-1)/n / 1e9\n",
        world, o.iters, o.warmup);
    std::printf("%-10s %10s %7s %9s | %9s %9s %9s %9s | %8s %8s %8s\n", "size", "bytes", "buckets",
                "raw_us", "raw_MPI", "comm_sum", "comm_avg", "reducer", "sum/raw", "avg/raw",
                "red/raw");
    double min_ratio = 1e9;
    std::string min_at;
    std::vector<double> big_ratios;
    for (const Row& r : rows) {
      const double raw = busbw(r, r.t_raw), sum = busbw(r, r.t_sum), avg = busbw(r, r.t_avg),
                   red = busbw(r, r.t_reducer);
      std::printf("%-10s %10zu %7zu %9.1f | %9.3f %9.3f %9.3f %9.3f | %8.3f %8.3f %8.3f\n",
                  r.label.c_str(), r.bytes, r.buckets, r.t_raw * 1e6, raw, sum, avg, red, sum / raw,
                  avg / raw, red / raw);
      if (r.label != "day_night" && r.bytes >= (1u << 20)) {
        big_ratios.push_back(red / raw);
        if (red / raw < min_ratio) {
          min_ratio = red / raw;
          min_at = r.label;
        }
      }
    }
    if (!big_ratios.empty()) {
      std::printf(
          "reducer/raw busbw at >= 1 MB: min %.3f (at %s), median %.3f; target >= 0.95: "
          "%s\n",
          min_ratio, min_at.c_str(), Median(big_ratios), min_ratio >= 0.95 ? "MET" : "MISSED");
    }
    std::fflush(stdout);
  }
  return 0;
}
