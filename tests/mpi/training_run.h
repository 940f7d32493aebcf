// Runs a job on every rank of a test's communicator as dtrain-worker would, without progress
// output: the multi-rank training tests share it.
#ifndef DTRAIN_TESTS_MPI_TRAINING_RUN_H_
#define DTRAIN_TESTS_MPI_TRAINING_RUN_H_

#include <cstdint>
#include <filesystem>

#include "runtime/comm/communicator.h"
#include "workers/trainer/progress.h"
#include "workers/trainer/trainer.h"

namespace dtrain::trainer::testing {

// Rank 0 writes <output_dir>/metrics.jsonl, as the worker does. stop_after < 0: run to the end.
inline StatusOr<TrainOutcome> RunQuietly(const JobSpec& spec, comm::Communicator& comm, bool resume,
                                         int64_t stop_after = -1) {
  ProgressOptions p;
  p.job = spec.name;
  p.rank = comm.rank();
  p.world_size = comm.size();
  p.human = HumanProgress::kNone;
  p.json_lines = false;
  if (comm.rank() == 0) {
    std::filesystem::create_directories(spec.output_dir);
    p.metrics_path = spec.output_dir + "/metrics.jsonl";
  }
  ProgressReporter progress(p);
  TrainOptions options;
  options.resume = resume;
  options.stop_after_steps = stop_after;
  options.local_size = comm.size();
  return RunTraining(spec, comm, comm, options, progress);
}

}  // namespace dtrain::trainer::testing

#endif  // DTRAIN_TESTS_MPI_TRAINING_RUN_H_
