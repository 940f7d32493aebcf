// dtrain-worker's detection subcommands:
//   dtrain-worker gen-detection-scenes --out DIR [--train N] [--test N] [--size PX] [--seed S]
//   dtrain-worker detect-objects --run RUN_DIR --image FILE --out OUT.png [--threshold P]
//                                [--nms-iou T]
// WorkerMain adds them to its command line and runs the one chosen.
#ifndef DTRAIN_WORKERS_TRAINER_TASKS_YOLO_WORKER_COMMANDS_H_
#define DTRAIN_WORKERS_TRAINER_TASKS_YOLO_WORKER_COMMANDS_H_

#include <CLI/CLI.hpp>
#include <memory>
#include <optional>

namespace dtrain::trainer {

class YoloCommands {
 public:
  // Adds the subcommands to `app`, which must outlive this object.
  explicit YoloCommands(CLI::App& app);
  ~YoloCommands();
  YoloCommands(const YoloCommands&) = delete;
  YoloCommands& operator=(const YoloCommands&) = delete;

  // After parsing: the exit code of the subcommand that was chosen, or nothing when none was.
  std::optional<int> Run();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace dtrain::trainer

#endif  // DTRAIN_WORKERS_TRAINER_TASKS_YOLO_WORKER_COMMANDS_H_
