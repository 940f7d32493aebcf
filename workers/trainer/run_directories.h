// RunDirectories: the directories one training run writes (output_dir, checkpoint.dir), claimed
// by rank 0 for the run's lifetime so that two runs can never write into the same one: their
// metrics.jsonl lines would interleave, one's checkpoint retention would delete the other's
// checkpoints, and a --resume would continue the other's state.
#ifndef DTRAIN_WORKERS_TRAINER_RUN_DIRECTORIES_H_
#define DTRAIN_WORKERS_TRAINER_RUN_DIRECTORIES_H_

#include <string>
#include <vector>

#include "runtime/common/directory_lock.h"
#include "runtime/common/status.h"

namespace dtrain::trainer {

class RunDirectories {
 public:
  // Creates output_dir and checkpoint_dir and locks each (DirectoryLock, held until this object
  // is destroyed; the kernel drops it when the process dies). Refuses, naming the directory:
  // one whose last component is a symbolic link (a link swapped in after the path was checked
  // would redirect every write), one that is not a directory, and one another process holds
  // (FAILED_PRECONDITION naming the holder's pid). A fresh run (!resume) then removes what an
  // earlier run left in the directories it now owns: checkpoints (ckpt-*), summary.json,
  // model.pt and metrics.jsonl, so nothing of that run is taken for this one's.
  static StatusOr<RunDirectories> Claim(const std::string& output_dir,
                                        const std::string& checkpoint_dir, bool resume);

  RunDirectories(RunDirectories&&) = default;
  RunDirectories& operator=(RunDirectories&&) = default;
  RunDirectories(const RunDirectories&) = delete;
  RunDirectories& operator=(const RunDirectories&) = delete;

 private:
  RunDirectories() = default;
  std::vector<DirectoryLock> locks_;
};

}  // namespace dtrain::trainer

#endif  // DTRAIN_WORKERS_TRAINER_RUN_DIRECTORIES_H_
