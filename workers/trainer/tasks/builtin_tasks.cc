// The tasks dtrain-worker trains: one registration line per task (its spec section registers in
// runtime/spec/tasks/builtin_tasks.cc).
#include "workers/trainer/task_registry.h"
#include "workers/trainer/tasks/face_triplet/face_triplet.h"
#include "workers/trainer/tasks/image_classification/image_classification.h"
#include "workers/trainer/tasks/style_transfer/style_transfer_task.h"
#include "workers/trainer/tasks/yolo/yolo.h"
#ifdef DTRAIN_HAVE_AUDIO
#include "workers/trainer/tasks/trigger_word/trigger_word.h"
#endif

namespace dtrain::trainer {

void RegisterBuiltinTasks(TaskRegistry& registry) {
  RegisterImageClassificationTasks(registry);
  RegisterFaceTripletTask(registry);
  RegisterStyleTransferTask(registry);
  RegisterYoloTask(registry);
#ifdef DTRAIN_HAVE_AUDIO  // built without libsndfile/libsamplerate: no trigger_word
  RegisterTriggerWordTask(registry);
#endif
}

}  // namespace dtrain::trainer
