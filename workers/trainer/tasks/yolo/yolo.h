// The yolo task: a grid object detector trained with the five-term YOLO loss (yolo_loss.h) on
// folders of images with YOLO text labels (runtime/data/detection), evaluated by mAP@0.5 (VOC,
// all-point) and mAP@[.5:.95] (COCO) after per-class NMS.
#ifndef DTRAIN_WORKERS_TRAINER_TASKS_YOLO_YOLO_H_
#define DTRAIN_WORKERS_TRAINER_TASKS_YOLO_YOLO_H_

#include "workers/trainer/task_registry.h"

namespace dtrain::trainer {

// Files a finished run holds beside model.pt and spec.yaml: the class names, one per line, for
// the inference command to label its boxes.
inline constexpr char kYoloClassesFile[] = "classes.txt";

void RegisterYoloTask(TaskRegistry& registry);

}  // namespace dtrain::trainer

#endif  // DTRAIN_WORKERS_TRAINER_TASKS_YOLO_YOLO_H_
