#include "workers/trainer/tasks/yolo/yolo_detector.h"

#include <torch/torch.h>

#include <filesystem>

#include "runtime/data/detection/grid_decode.h"
#include "runtime/data/detection/yolo_labels.h"
#include "runtime/spec/job_spec.h"
#include "runtime/spec/tasks/yolo.h"
#include "workers/trainer/tasks/yolo/yolo_net.h"

namespace dtrain::trainer {

struct YoloDetector::Impl {
  YoloSpec spec;
  std::vector<std::string> class_names;
  data::GridShape shape;
  YoloNet net{nullptr};
};

YoloDetector::YoloDetector(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
YoloDetector::~YoloDetector() = default;

StatusOr<std::unique_ptr<YoloDetector>> YoloDetector::Load(const std::string& run_dir) {
  namespace fs = std::filesystem;
  const std::string spec_path = (fs::path(run_dir) / "spec.yaml").string();
  const std::string model_path = (fs::path(run_dir) / "model.pt").string();
  if (!fs::exists(spec_path)) {
    return NotFound("'" + spec_path +
                    "' does not exist: --run must be a finished run's output_dir");
  }
  DTRAIN_ASSIGN_OR_RETURN(JobSpec job, LoadJobSpec(spec_path));
  const auto* spec = job.TaskSpecAs<YoloSpec>();
  if (spec == nullptr) {
    return InvalidArgument("'" + spec_path + "' is a " + job.task + " job, not yolo");
  }
  if (!fs::exists(model_path)) {
    return NotFound("'" + model_path + "' does not exist: the run has not finished");
  }
  auto impl = std::make_unique<Impl>();
  impl->spec = *spec;
  DTRAIN_ASSIGN_OR_RETURN(impl->class_names, data::ReadClassNames(run_dir));
  impl->shape = {spec->model.cells, spec->model.boxes, static_cast<int>(impl->class_names.size())};
  impl->net = YoloNet(spec->model, impl->shape);
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(model_path);
    impl->net->load(archive);
  } catch (const std::exception& e) {
    std::string what = e.what();
    return DataLoss("'" + model_path +
                    "' does not hold this run's model: " + what.substr(0, what.find('\n')));
  }
  impl->net->eval();
  return std::unique_ptr<YoloDetector>(new YoloDetector(std::move(impl)));
}

std::vector<data::Detection> YoloDetector::Detect(const data::DecodedImage& rgb,
                                                  double score_threshold, double nms_iou) const {
  const int side = impl_->spec.data.image_size;
  const std::vector<uint8_t> resized =
      data::ResizeBilinear(rgb.pixels.data(), rgb.height, rgb.width, 3, side, side);
  torch::NoGradGuard no_grad;
  at::Tensor grid = impl_->net->forward(YoloInput(resized.data(), 1, side)).contiguous();
  return data::DecodeGridWithNms(grid.data_ptr<float>(), impl_->shape, score_threshold, nms_iou);
}

const std::vector<std::string>& YoloDetector::class_names() const { return impl_->class_names; }

}  // namespace dtrain::trainer
