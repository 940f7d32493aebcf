// Mean average precision of detections over a set of images, as PASCAL VOC (2010 and later)
// and COCO define it.
#ifndef DTRAIN_RUNTIME_DATA_DETECTION_AVERAGE_PRECISION_H_
#define DTRAIN_RUNTIME_DATA_DETECTION_AVERAGE_PRECISION_H_

#include <vector>

#include "runtime/data/detection/boxes.h"

namespace dtrain::data {

// One image's truth and predictions.
struct ImageDetections {
  std::vector<LabelledBox> truth;
  std::vector<Detection> predicted;
};

// Average precision of one class at one IoU threshold, VOC style: detections of the class over
// all images by descending score; each is a true positive when its best-overlapping truth box of
// the class (IoU >= iou_threshold) was not matched by a higher-scoring detection, else a false
// positive. AP is the area under the precision envelope (precision made non-increasing in
// recall), summed at every recall step ("all-point" interpolation). A class with no truth box
// returns -1 (it does not count towards the mean).
double AveragePrecision(const std::vector<ImageDetections>& images, int cls, double iou_threshold);

// Mean of AveragePrecision over the classes in [0, num_classes) that have truth boxes; 0 when
// none has.
double MeanAveragePrecision(const std::vector<ImageDetections>& images, int num_classes,
                            double iou_threshold);

// COCO's mAP@[.5:.95]: MeanAveragePrecision averaged over IoU thresholds 0.50, 0.55, ..., 0.95.
double MeanAveragePrecisionCoco(const std::vector<ImageDetections>& images, int num_classes);

}  // namespace dtrain::data

#endif  // DTRAIN_RUNTIME_DATA_DETECTION_AVERAGE_PRECISION_H_
