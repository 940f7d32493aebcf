// dtrain-worker's trigger-word subcommands:
//   dtrain-worker gen-trigger-word --out DIR [--train N] [--holdout N] [--real N] [--rate HZ]
//                                  [--seconds S] [--seed S]
//   dtrain-worker detect-trigger-word --run RUN_DIR --wav FILE [--chime OUT.wav] [--threshold P]
// WorkerMain adds them to its command line and runs the one chosen.
#ifndef DTRAIN_WORKERS_TRAINER_TASKS_TRIGGER_WORD_WORKER_COMMANDS_H_
#define DTRAIN_WORKERS_TRAINER_TASKS_TRIGGER_WORD_WORKER_COMMANDS_H_

#include <CLI/CLI.hpp>
#include <memory>
#include <optional>

namespace dtrain::trainer {

class TriggerWordCommands {
 public:
  // Adds the subcommands to `app`, which must outlive this object.
  explicit TriggerWordCommands(CLI::App& app);
  ~TriggerWordCommands();
  TriggerWordCommands(const TriggerWordCommands&) = delete;
  TriggerWordCommands& operator=(const TriggerWordCommands&) = delete;

  // After parsing: the exit code of the subcommand that was chosen, or nothing when none was.
  std::optional<int> Run();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace dtrain::trainer

#endif  // DTRAIN_WORKERS_TRAINER_TASKS_TRIGGER_WORD_WORKER_COMMANDS_H_
