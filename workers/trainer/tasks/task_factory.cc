#include "workers/trainer/task.h"
#include "workers/trainer/tasks/face_triplet.h"
#include "workers/trainer/tasks/image_classification.h"

namespace dtrain::trainer {

StatusOr<std::unique_ptr<Task>> MakeTask(const JobSpec& spec, const TaskContext& context) {
  switch (spec.task) {
    case TaskKind::kDayNight:
    case TaskKind::kMulticlass:
      return MakeImageClassificationTask(spec, context);
    case TaskKind::kFaceTriplet:
      return MakeFaceTripletTask(spec, context);
  }
  return InvalidArgument(std::string("no task implementation for '") + ToString(spec.task) + "'");
}

}  // namespace dtrain::trainer
