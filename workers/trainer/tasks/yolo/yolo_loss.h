// The YOLO (v1) loss, as in the lecture: five sum-squared terms over cells and boxes,
//   lambda_coord * sum 1obj [(x - x^)^2 + (y - y^)^2]
// + lambda_coord * sum 1obj [(sqrt w - sqrt w^)^2 + (sqrt h - sqrt h^)^2]
// +                sum 1obj (C - C^)^2
// + lambda_noobj * sum 1noobj (C - 0)^2
// +                sum over cells holding an object, over classes (p(c) - p^(c))^2
// where 1obj marks the predictor responsible for a truth box: of the B boxes of the cell holding
// the box's centre, the one whose prediction has the highest IoU with it. Every other box is
// 1noobj. C^ is that IoU (YOLO's Pr(object) x IoU), or 1 when `rescore` is off.
#ifndef DTRAIN_WORKERS_TRAINER_TASKS_YOLO_YOLO_LOSS_H_
#define DTRAIN_WORKERS_TRAINER_TASKS_YOLO_YOLO_LOSS_H_

#include <ATen/core/Tensor.h>

#include <vector>

#include "runtime/data/detection/grid_decode.h"

namespace dtrain::trainer {

struct YoloLossOptions {
  double lambda_coord = 5.0;
  double lambda_noobj = 0.5;
  bool rescore = true;  // objectness target: IoU of the responsible prediction (true) or 1
};

// The five terms, each summed over the batch's cells and boxes and divided by the batch size
// (so the losses of equal-sized shards average to the loss of the whole batch); total is their
// sum. Scalars; they carry gradients to `predictions`.
struct YoloLossTerms {
  at::Tensor xy, wh, object, no_object, classes, total;
};

// `predictions`: [N, S, S, B * 5 + C], activated and laid out as grid_decode.h describes.
// `truth`: N tensors [n_i, 5] (class, cx, cy, w, h; normalised, as YOLO label files). When two
// truth boxes have their centre in one cell, the first is the cell's object (YOLO v1 predicts
// one class per cell) and the later ones are ignored.
YoloLossTerms YoloLoss(const at::Tensor& predictions, const std::vector<at::Tensor>& truth,
                       const data::GridShape& shape, const YoloLossOptions& options);

}  // namespace dtrain::trainer

#endif  // DTRAIN_WORKERS_TRAINER_TASKS_YOLO_YOLO_LOSS_H_
