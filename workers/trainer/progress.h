// Progress reporting of a training run, in three forms:
//  - machine-readable JSON lines on stdout (schema: proto/dtrain/v1/progress.proto,
//    ProgressEvent in proto3 JSON form), for the coordinator; every rank reports its own start,
//    finish, failure (blaming a rank) and warnings, rank 0 also steps and epochs;
//  - a human view on stderr from rank 0: a live status line on a terminal, plain lines otherwise;
//  - metrics.jsonl in the output directory (rank 0): the same ProgressEvent objects for the
//    run's start, every step, every epoch and its finish, so one reader reads both; each
//    carries the run's run_id, so the runs a resumed job appends are told apart.
//  - TensorBoard event files (rank 0, tensorboard_writer.h): the same figures as curves.
#ifndef DTRAIN_WORKERS_TRAINER_PROGRESS_H_
#define DTRAIN_WORKERS_TRAINER_PROGRESS_H_

#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "workers/trainer/tensorboard_writer.h"

namespace dtrain::trainer {

enum class HumanProgress { kAuto, kTty, kPlain, kNone };

struct ProgressOptions {
  std::string job;
  std::string run_id;  // the same on every rank of a run (NewRunId on rank 0, broadcast)
  int rank = 0;
  int world_size = 1;
  HumanProgress human = HumanProgress::kAuto;
  bool json_lines = true;
  std::string metrics_path;      // metrics.jsonl; empty: none (rank 0 only writes)
  std::string tensorboard_dir;   // event files; empty: none (rank 0 only writes)
  std::FILE* json_out = stdout;  // where JSON lines go (tests redirect it)
};

struct StepReport {
  int64_t epoch = 0;  // 0-based
  int64_t epochs = 0;
  int64_t step_in_epoch = 0;  // optimizer steps done in this epoch
  int64_t steps_per_epoch = 0;
  int64_t global_step = 0;
  double loss = 0;  // mean over ranks and samples of this step
  double lr = 0;
  double samples_per_s = 0;  // all ranks together, recent window
  double eta_s = 0;
  double comm_wait_s = 0;  // time blocked on gradient all-reduce in this step
  double backward_s = 0;   // backward of the last micro-batch (bucket all-reduces overlap it)
  // Task statistics of this step besides the loss, over all ranks (e.g. the fraction of active
  // triplets); written as "metrics" when non-empty.
  std::map<std::string, double> metrics;
};

class ProgressReporter {
 public:
  explicit ProgressReporter(ProgressOptions options);
  ~ProgressReporter();
  ProgressReporter(const ProgressReporter&) = delete;
  ProgressReporter& operator=(const ProgressReporter&) = delete;

  // Free-form start-up/info line (rank 0 on the human channel).
  void Info(const std::string& line);
  void Started(const nlohmann::json& details);
  void Step(const StepReport& step, bool print);  // metrics.jsonl always; screen when print
  void Epoch(int64_t epoch, int64_t epochs, double train_loss, double seconds,
             const nlohmann::json& metrics, const std::string& summary);
  void Checkpoint(const std::string& path, int64_t global_step);
  void Finished(const nlohmann::json& summary);
  // `blamed_rank`: the rank the failure is blamed on: this rank when it failed by itself, the
  // rank that stopped answering when a collective could not complete, -1 when it cannot be told.
  void Failed(const std::string& message, int exit_code, int blamed_rank);
  // Something may be wrong with `ranks` (e.g. no heartbeat for half the timeout). Thread-safe
  // against the other methods: the liveness monitor calls it from its own thread.
  void Warning(const std::string& message, const std::vector<int>& ranks);

  // Rank 0: a task's picture in the event file at the last step reported (other ranks, or
  // without event files: nothing). A write error is handled as the scalars' are.
  void Image(const std::string& tag, const SummaryImage& image);

 private:
  // Adds time, job, run_id, rank and world_size.
  void Stamp(nlohmann::json* event) const;
  void Emit(nlohmann::json event);  // JSON line on stdout
  // A line of metrics.jsonl (rank 0): `event` stamped, with the legacy "type" alias.
  void Record(nlohmann::json event);
  void Human(const std::string& line);
  void ClearLiveLine();
  // Adds scalars to the event file; on a write error warns once and stops writing events (the
  // run goes on: curves are a view, metrics.jsonl stays the record).
  void Scalars(const std::vector<std::pair<std::string, double>>& values, int64_t step);
  void FlushTensorBoard();

  ProgressOptions options_;
  std::recursive_mutex mu_;  // output of the trainer's thread and the liveness monitor's
  bool live_ = false;        // rank 0 with a terminal on stderr
  bool live_line_shown_ = false;
  std::FILE* metrics_ = nullptr;
  std::unique_ptr<TensorBoardWriter> tensorboard_;
  int64_t last_step_ = 0;  // x of the epoch's and the test's curves: the step they followed
};

// "1:02:03" / "4:05"
std::string FormatDuration(double seconds);

// A fresh run id: UTC start time and 32 random bits, "20261205T110000Z-3f9a1c2e".
std::string NewRunId();

}  // namespace dtrain::trainer

#endif  // DTRAIN_WORKERS_TRAINER_PROGRESS_H_
