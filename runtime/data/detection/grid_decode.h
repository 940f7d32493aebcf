// Decoding a YOLO grid (S x S cells, B boxes and C class probabilities per cell) into scored
// detections. The grid holds activated predictions, cell-major (row, column), each cell laid out
// as B x (x, y, sqrt_w, sqrt_h, confidence) then C class probabilities:
//  - x, y: the box centre inside its cell, in [0, 1];
//  - sqrt_w, sqrt_h: square roots of the box size as a fraction of the image (YOLO v1 regresses
//    the roots so that an error on a small box weighs more than on a large one);
//  - confidence: Pr(object) x IoU(prediction, truth);
//  - class probabilities: Pr(class | object), shared by the cell's B boxes.
#ifndef DTRAIN_RUNTIME_DATA_DETECTION_GRID_DECODE_H_
#define DTRAIN_RUNTIME_DATA_DETECTION_GRID_DECODE_H_

#include <vector>

#include "runtime/data/detection/boxes.h"

namespace dtrain::data {

struct GridShape {
  int cells = 7;    // S
  int boxes = 2;    // B
  int classes = 1;  // C
  int cell_size() const { return boxes * 5 + classes; }
  int size() const { return cells * cells * cell_size(); }
};

// Every box of every cell with its best class: score = confidence x Pr(class | object); boxes
// scoring below `score_threshold` are dropped. Boxes are clipped to the image.
std::vector<Detection> DecodeGrid(const float* grid, const GridShape& shape,
                                  double score_threshold);

// DecodeGrid, then NonMaxSuppressionPerClass(nms_iou).
std::vector<Detection> DecodeGridWithNms(const float* grid, const GridShape& shape,
                                         double score_threshold, double nms_iou);

}  // namespace dtrain::data

#endif  // DTRAIN_RUNTIME_DATA_DETECTION_GRID_DECODE_H_
