// The tasks dtrain-worker trains: one registration line per task (its spec section registers in
// runtime/spec/tasks/builtin_tasks.cc).
#include "workers/trainer/task_registry.h"
#include "workers/trainer/tasks/face_triplet.h"
#include "workers/trainer/tasks/image_classification.h"

namespace dtrain::trainer {

void RegisterBuiltinTasks(TaskRegistry& registry) {
  (void)registry.Register("day_night", MakeImageClassificationTask);
  (void)registry.Register("multiclass", MakeImageClassificationTask);
  (void)registry.Register("face_triplet", MakeFaceTripletTask);
}

}  // namespace dtrain::trainer
