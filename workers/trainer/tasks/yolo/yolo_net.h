// The yolo task's network: a small CNN backbone whose conv blocks halve the image down to the
// S x S grid, a 3x3 conv at grid resolution, and a 1x1 conv to B * 5 + C channels per cell.
// Its output is activated as grid_decode.h lays it out: sigmoid for x, y, sqrt w, sqrt h and
// confidence; softmax over the classes.
#ifndef DTRAIN_WORKERS_TRAINER_TASKS_YOLO_YOLO_NET_H_
#define DTRAIN_WORKERS_TRAINER_TASKS_YOLO_YOLO_NET_H_

#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/pimpl.h>

#include "runtime/data/detection/grid_decode.h"
#include "runtime/spec/tasks/yolo.h"

namespace dtrain::trainer {

class YoloNetImpl : public torch::nn::Module {
 public:
  YoloNetImpl(const YoloModelSpec& model, const data::GridShape& shape);
  // [N, 3, H, W] normalised images -> [N, S, S, B * 5 + C] activated predictions.
  at::Tensor forward(const at::Tensor& images);
  const data::GridShape& shape() const { return shape_; }

 private:
  data::GridShape shape_;
  torch::nn::Sequential body_{nullptr};
};
TORCH_MODULE(YoloNet);

// uint8 HWC pixels of `count` square images -> the network's input [count, 3, side, side].
at::Tensor YoloInput(const uint8_t* pixels, int64_t count, int side);

}  // namespace dtrain::trainer

#endif  // DTRAIN_WORKERS_TRAINER_TASKS_YOLO_YOLO_NET_H_
