// The training loop: data-parallel over a Communicator, task-agnostic.
//   spec -> Task (model, data, loss, eval) -> per step: sampler shard -> forward/backward with
//   the Reducer averaging gradients during backward -> optimizer step -> progress/checkpoints.
#ifndef DTRAIN_WORKERS_TRAINER_TRAINER_H_
#define DTRAIN_WORKERS_TRAINER_TRAINER_H_

#include <nlohmann/json.hpp>
#include <string>

#include "runtime/comm/communicator.h"
#include "runtime/spec/job_spec.h"
#include "workers/trainer/progress.h"

namespace dtrain::trainer {

struct TrainOptions {
  bool resume = false;  // continue from the newest checkpoint in checkpoint.dir
  int local_rank = 0;
  int local_size = 1;
  // Stop after this many optimizer steps in total (tests of resume; <0: run to the end).
  int64_t stop_after_steps = -1;
};

// Non-OK statuses carry the reason; a non-finite loss is kAborted with the step number.
struct TrainOutcome {
  nlohmann::json summary;  // also written to <output_dir>/summary.json by rank 0
};

// `host_comm` carries small host-memory collectives (loss statistics, evaluation counts, flags);
// `tensor_comm` reduces gradients and broadcasts parameters where they live: the same MPI
// communicator on CPU, NCCL for CUDA tensors. Both span the same ranks in the same order.
StatusOr<TrainOutcome> RunTraining(const JobSpec& spec, comm::Communicator& host_comm,
                                   comm::Communicator& tensor_comm, const TrainOptions& options,
                                   ProgressReporter& progress);

}  // namespace dtrain::trainer

#endif  // DTRAIN_WORKERS_TRAINER_TRAINER_H_
