// Checkpoints: model + optimizer + loop position, written by rank 0 atomically (temp file,
// fsync, rename, fsync of the directory), keeping the newest `keep_last`. Files are named
// ckpt-<global step, 10 digits>.pt so lexical order is step order.
#ifndef DTRAIN_WORKERS_TRAINER_CHECKPOINT_H_
#define DTRAIN_WORKERS_TRAINER_CHECKPOINT_H_

#include <cstdint>
#include <optional>
#include <string>

#include "runtime/common/status.h"

namespace torch::nn {
class Module;
}
namespace torch::optim {
class Optimizer;
}

namespace dtrain::trainer {

// Where the loop stands: the next micro-batch to run is `micro_step` of epoch `epoch`.
struct LoopPosition {
  int64_t epoch = 0;
  int64_t micro_step = 0;
  int64_t global_step = 0;  // optimizer steps taken so far
};

Status SaveCheckpoint(const std::string& dir, const LoopPosition& position,
                      torch::nn::Module& model, torch::optim::Optimizer& optimizer, int keep_last);

// Newest complete checkpoint in dir (temp files are ignored), or nullopt when there is none.
std::optional<std::string> FindLatestCheckpoint(const std::string& dir);

// Loads into existing model/optimizer (shapes must match); errors name the file.
Status LoadCheckpoint(const std::string& path, torch::nn::Module& model,
                      torch::optim::Optimizer& optimizer, LoopPosition* position);

// Saves the model alone (the job's final artifact).
Status SaveModel(const std::string& path, torch::nn::Module& model);

}  // namespace dtrain::trainer

#endif  // DTRAIN_WORKERS_TRAINER_CHECKPOINT_H_
