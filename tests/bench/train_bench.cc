// train_bench: training throughput (samples/s) of the day/night model through dtrain's real
// Reducer + MpiCommunicator, for comparison with tests/bench/ddp_baseline.py (PyTorch DDP, gloo).
//
//   mpirun -np 1 build/bin/train_bench      mpirun -np 2 build/bin/train_bench
//   options: [--steps 40] [--warmup 5] [--batch 32] [--threads 1] [--samples 1024]
//
// Model: BuildCnn with jobs/day_night.yaml's ModelSpec (conv_channels [16, 32, 32], hidden [64],
// batch norm, 64x64x3 input, 1 logit). Data: in memory, identical on every rank and identical to
// ddp_baseline.py's: torch::manual_seed(0); images = rand(samples, 3, 64, 64); labels =
// (rand(samples) < 0.5) (LibTorch and PyTorch share the CPU generator, so the values match; the
// printed data_checksum shows it). Rank r's batch at step s is rows [(s*world + r)*batch, +batch)
// modulo samples, gathered with index_select like the trainer's Task::GetBatch.
// One step is what workers/trainer/trainer.cc does per optimizer step: PrepareForBackward, forward,
// BinaryLogLikelihoodLoss, backward (bucket all-reduces start from the autograd hooks),
// FinishBackward, loss.item(), the 2-double all-reduce of the step's loss (the trainer's NaN
// check), Adam step, ZeroGrad. Measurement: after --warmup steps a barrier, then --steps timed
// steps; samples/s per rank = steps * batch / that rank's time, total = world * steps * batch /
// slowest rank's time. Prints one JSON line (rank 0).
#include <mpi.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "runtime/comm/mpi_communicator.h"
#include "runtime/spec/job_spec.h"
#include "workers/models/cnn.h"
#include "workers/trainer/allocator_tuning.h"
#include "workers/trainer/compute_threads.h"
#include "workers/trainer/reducer.h"
#include "workers/trainer/tasks/image_classification/image_classification.h"

namespace {

using dtrain::Status;
using dtrain::comm::DataType;
using dtrain::comm::ReduceOp;
using dtrain::trainer::NamedTensor;

struct Options {
  int steps = 40;
  int warmup = 5;
  int batch = 32;
  int threads = 1;
  int samples = 1024;
};

void Check(const Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "train_bench: %s: %s\n", what, s.ToString().c_str());
    dtrain::comm::MpiEnvironment::Abort(1);
  }
}

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

bool ParseOptions(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    int* target = a == "--steps"     ? &o->steps
                  : a == "--warmup"  ? &o->warmup
                  : a == "--batch"   ? &o->batch
                  : a == "--threads" ? &o->threads
                  : a == "--samples" ? &o->samples
                                     : nullptr;
    if (target == nullptr || v == nullptr) {
      std::fprintf(stderr,
                   "usage: mpirun -np N train_bench [--steps 40] [--warmup 5] "
                   "[--batch 32] [--threads 1] [--samples 1024]\n");
      return false;
    }
    *target = std::atoi(v);
    ++i;
  }
  return o->steps > 0 && o->warmup >= 0 && o->batch > 0 && o->threads > 0 && o->samples >= o->batch;
}

}  // namespace

int main(int argc, char** argv) {
  dtrain::trainer::KeepFreedMemoryForReuse();  // as dtrain-worker does
  auto env_or = dtrain::comm::MpiEnvironment::Init(&argc, &argv);
  if (!env_or.ok()) {
    std::fprintf(stderr, "train_bench: %s\n", env_or.status().ToString().c_str());
    return 1;
  }
  std::unique_ptr<dtrain::comm::MpiEnvironment> env = std::move(*env_or);
  Options o;
  if (!ParseOptions(argc, argv, &o)) return 2;
  auto comm_or = dtrain::comm::MpiCommunicator::Create(MPI_COMM_WORLD, std::chrono::minutes(5));
  Check(comm_or.status(), "MpiCommunicator::Create");
  std::unique_ptr<dtrain::comm::MpiCommunicator> comm = std::move(*comm_or);
  const int rank = comm->rank();
  const int world = comm->size();
  dtrain::trainer::SetComputeThreads(o.threads);  // as the trainer does

  // The same synthetic data as ddp_baseline.py.
  torch::manual_seed(0);
  const torch::Tensor images = torch::rand({o.samples, 3, 64, 64});
  const torch::Tensor labels = (torch::rand({o.samples}) < 0.5).to(torch::kFloat32);
  const double checksum = images.sum().item<double>() + labels.sum().item<double>();

  dtrain::ModelSpec spec;  // jobs/day_night.yaml
  spec.conv_channels = {16, 32, 32};
  spec.hidden_units = {64};
  spec.batch_norm = true;
  torch::manual_seed(1);
  torch::nn::Sequential model = dtrain::models::BuildCnn(spec, 3, 64, 64, 1);
  model->train();

  std::vector<NamedTensor> parameters, buffers;
  std::vector<torch::Tensor> trainable;
  int64_t num_params = 0;
  for (const auto& p : model->named_parameters()) {
    parameters.push_back({p.key(), p.value()});
    trainable.push_back(p.value());
    num_params += p.value().numel();
  }
  for (const auto& b : model->named_buffers()) buffers.push_back({b.key(), b.value()});
  torch::optim::Adam optimizer(trainable, torch::optim::AdamOptions(0.002));
  dtrain::trainer::ReducerOptions reducer_options;  // = distributed.bucket_mb 25, first 1 MB
  reducer_options.average_in_reducer = false;       // as the trainer: the loss is pre-scaled
  auto reducer_or = dtrain::trainer::Reducer::Create(*comm, parameters, buffers, reducer_options);
  Check(reducer_or.status(), "Reducer::Create");
  std::unique_ptr<dtrain::trainer::Reducer> reducer = std::move(*reducer_or);

  std::vector<double> step_seconds, wait_seconds;
  double start = 0;
  double loss_value = 0;
  for (int step = 0; step < o.warmup + o.steps; ++step) {
    if (step == o.warmup) {
      Check(comm->Barrier(), "barrier");
      start = Now();
    }
    const double step_start = Now();
    const int64_t first = (static_cast<int64_t>(step) * world + rank) * o.batch % o.samples;
    torch::Tensor index = (torch::arange(o.batch, torch::kLong) + first).remainder(o.samples);
    torch::Tensor x = images.index_select(0, index);
    torch::Tensor y = labels.index_select(0, index);

    reducer->PrepareForBackward(/*sync=*/true);
    torch::Tensor logits = model->forward(x);
    torch::Tensor loss = dtrain::trainer::BinaryLogLikelihoodLoss(logits.squeeze(1), y);
    (loss / static_cast<double>(world)).backward();
    Check(reducer->FinishBackward(), "FinishBackward");
    double stats[2] = {loss.item<double>() * o.batch, static_cast<double>(o.batch)};
    Check(comm->AllReduce({stats, 2, DataType::kFloat64}, ReduceOp::kSum), "loss all-reduce");
    loss_value = stats[0] / stats[1];
    optimizer.step();
    reducer->ZeroGrad();
    if (step >= o.warmup) {
      step_seconds.push_back(Now() - step_start);
      wait_seconds.push_back(reducer->last_timings().wait_s);
    }
  }
  const double elapsed = Now() - start;

  std::vector<double> all_elapsed(world);
  double mine = elapsed;
  Check(comm->AllGather({&mine, 1, DataType::kFloat64},
                        {all_elapsed.data(), all_elapsed.size(), DataType::kFloat64}),
        "gather of timings");
  if (rank == 0) {
    const double per_rank_samples = static_cast<double>(o.steps) * o.batch;
    nlohmann::json per_rank = nlohmann::json::array();
    for (double e : all_elapsed) per_rank.push_back(per_rank_samples / e);
    const double slowest = *std::max_element(all_elapsed.begin(), all_elapsed.end());
    nlohmann::json out;
    out["framework"] = "dtrain";
    out["world_size"] = world;
    out["threads"] = o.threads;
    out["batch_per_rank"] = o.batch;
    out["warmup_steps"] = o.warmup;
    out["steps"] = o.steps;
    out["parameters"] = num_params;
    out["buckets"] = reducer->buckets().size();
    out["samples_per_s_total"] = world * per_rank_samples / slowest;
    out["samples_per_s_per_rank"] = per_rank;
    out["step_ms_median"] = Median(step_seconds) * 1e3;
    out["comm_wait_ms_median"] = Median(wait_seconds) * 1e3;
    out["final_loss"] = loss_value;
    out["data_checksum"] = checksum;
    std::printf("%s\n", out.dump().c_str());
    std::fflush(stdout);
  }
  return 0;
}
