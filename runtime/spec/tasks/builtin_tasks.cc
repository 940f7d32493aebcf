// The tasks every dtrain binary knows: one registration line per task.
#include "runtime/spec/task_spec.h"
#include "runtime/spec/tasks/face_triplet.h"
#include "runtime/spec/tasks/image_classification.h"
#include "runtime/spec/tasks/style_transfer.h"
#include "runtime/spec/tasks/trigger_word.h"
#include "runtime/spec/tasks/yolo.h"

namespace dtrain {

void RegisterBuiltinTaskSpecs(TaskSpecRegistry& registry) {
  RegisterImageClassificationSpecs(registry);
  RegisterFaceTripletSpec(registry);
  RegisterTriggerWordSpec(registry);
  RegisterStyleTransferSpec(registry);
  RegisterYoloSpec(registry);
}

}  // namespace dtrain
