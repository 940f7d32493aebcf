#include "workers/trainer/tasks/yolo/yolo_loss.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "runtime/data/detection/boxes.h"

namespace dtrain::trainer {

YoloLossTerms YoloLoss(const at::Tensor& predictions, const std::vector<at::Tensor>& truth,
                       const data::GridShape& shape, const YoloLossOptions& options) {
  const int64_t N = predictions.size(0);
  const int S = shape.cells, B = shape.boxes, C = shape.classes;
  TORCH_CHECK(predictions.dim() == 4 && predictions.size(1) == S && predictions.size(2) == S &&
                  predictions.size(3) == shape.cell_size(),
              "YoloLoss: predictions must be [N, S, S, B*5+C]");
  TORCH_CHECK(static_cast<int64_t>(truth.size()) == N, "YoloLoss: one truth tensor per image");

  // Targets are assigned on the host: a handful of boxes per image, and the choice of the
  // responsible predictor needs the current predictions' IoUs (no gradient flows through it).
  const at::Tensor pred_host = predictions.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  const float* p = pred_host.data_ptr<float>();
  at::Tensor responsible = torch::zeros({N, S, S, B});
  at::Tensor box_target = torch::zeros({N, S, S, B, 4});
  at::Tensor conf_target = torch::zeros({N, S, S, B});
  at::Tensor object_cell = torch::zeros({N, S, S});
  at::Tensor class_target = torch::zeros({N, S, S, C});
  auto resp = responsible.accessor<float, 4>();
  auto boxes = box_target.accessor<float, 5>();
  auto conf = conf_target.accessor<float, 4>();
  auto cell_has = object_cell.accessor<float, 3>();
  auto cls = class_target.accessor<float, 4>();
  for (int64_t n = 0; n < N; ++n) {
    const at::Tensor t = truth[n].to(torch::kCPU, torch::kFloat32).contiguous();
    TORCH_CHECK(t.numel() == 0 || (t.dim() == 2 && t.size(1) == 5),
                "YoloLoss: truth tensors must be [n, 5]");
    if (t.numel() == 0) continue;  // an image without objects: every box is 1noobj
    auto tb = t.accessor<float, 2>();
    for (int64_t k = 0; k < t.size(0); ++k) {
      const int c = static_cast<int>(tb[k][0]);
      const data::Box box{tb[k][1], tb[k][2], tb[k][3], tb[k][4]};
      TORCH_CHECK(c >= 0 && c < C, "YoloLoss: class out of range");
      const int col = std::clamp(static_cast<int>(box.cx * S), 0, S - 1);
      const int row = std::clamp(static_cast<int>(box.cy * S), 0, S - 1);
      if (cell_has[n][row][col] > 0) continue;
      cell_has[n][row][col] = 1;
      cls[n][row][col][c] = 1;
      const float* cell = p + ((n * S + row) * S + col) * shape.cell_size();
      int best = 0;
      double best_iou = -1;
      for (int b = 0; b < B; ++b) {
        const float* q = cell + b * 5;
        const data::Box predicted{(col + q[0]) / S, (row + q[1]) / S,
                                  static_cast<double>(q[2]) * q[2],
                                  static_cast<double>(q[3]) * q[3]};
        const double iou = data::IoU(predicted, box);
        if (iou > best_iou) {
          best_iou = iou;
          best = b;
        }
      }
      resp[n][row][col][best] = 1;
      boxes[n][row][col][best][0] = static_cast<float>(box.cx * S - col);
      boxes[n][row][col][best][1] = static_cast<float>(box.cy * S - row);
      boxes[n][row][col][best][2] = static_cast<float>(std::sqrt(box.w));
      boxes[n][row][col][best][3] = static_cast<float>(std::sqrt(box.h));
      conf[n][row][col][best] = options.rescore ? static_cast<float>(best_iou) : 1.0f;
    }
  }
  const auto device = predictions.device();
  const auto dtype = predictions.scalar_type();
  auto on = [&](const at::Tensor& x) { return x.to(device, dtype); };
  responsible = on(responsible);
  box_target = on(box_target);
  conf_target = on(conf_target);
  object_cell = on(object_cell);
  class_target = on(class_target);

  const at::Tensor box_pred =
      predictions.narrow(3, 0, B * 5).reshape({N, S, S, B, 5});  // x, y, sqrt w, sqrt h, C
  const at::Tensor class_pred = predictions.narrow(3, B * 5, C);
  const at::Tensor confidence = box_pred.select(4, 4);
  const at::Tensor r = responsible.unsqueeze(4);
  const at::Tensor xy_error = (box_pred.narrow(4, 0, 2) - box_target.narrow(4, 0, 2)).pow(2);
  const at::Tensor wh_error = (box_pred.narrow(4, 2, 2) - box_target.narrow(4, 2, 2)).pow(2);

  YoloLossTerms terms;
  const double per_image = 1.0 / static_cast<double>(std::max<int64_t>(N, 1));
  terms.xy = (r * xy_error).sum() * (options.lambda_coord * per_image);
  terms.wh = (r * wh_error).sum() * (options.lambda_coord * per_image);
  terms.object = (responsible * (confidence - conf_target).pow(2)).sum() * per_image;
  terms.no_object =
      ((1 - responsible) * confidence.pow(2)).sum() * (options.lambda_noobj * per_image);
  terms.classes = (object_cell.unsqueeze(3) * (class_pred - class_target).pow(2)).sum() * per_image;
  terms.total = terms.xy + terms.wh + terms.object + terms.no_object + terms.classes;
  return terms;
}

}  // namespace dtrain::trainer
