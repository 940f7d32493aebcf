// Spec of yolo: a grid object detector (YOLO v1) trained with the five-term YOLO loss.
//
// data.path holds train/ and test/ folders of images with a YOLO label file beside each
// (runtime/data/detection/yolo_labels.h) and a classes.txt; test/ is held out for the final
// evaluation, data.split of train/ is trained on and the rest validates. With data.generate,
// rank 0 first composes such a set there (Fashion-MNIST items on real photos) when it is missing.
#ifndef DTRAIN_RUNTIME_SPEC_TASKS_YOLO_H_
#define DTRAIN_RUNTIME_SPEC_TASKS_YOLO_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "runtime/spec/task_spec.h"

namespace dtrain {

struct YoloDataSpec {
  bool generate = false;
  int generate_train = 2000;  // images written to train/ by data.generate
  int generate_test = 400;    // images written to test/ (other items, other photo crops)
  int image_size = 0;         // square input side; default model.cells x 2^len(conv_channels)
  double split = 0.9;         // fraction of train/ trained on, in (0, 1)
  bool flip = true;           // random horizontal flips in training
  double max_zoom = 1.3;      // random crops zooming in up to this factor (1: none)
};

struct YoloModelSpec {
  // One 3x3 conv + batch norm + leaky ReLU + 2x2 max-pool per entry: the image shrinks by
  // 2^len to the S x S grid.
  std::vector<int> conv_channels = {16, 32, 64, 64};
  int head_channels = 128;  // a 3x3 conv at grid resolution before the 1x1 output conv
  int cells = 7;            // S
  int boxes = 2;            // B
  int classes = 0;          // C; 0: the number of lines of the data's classes.txt
};

struct YoloLossSpec {
  double lambda_coord = 5.0;
  double lambda_noobj = 0.5;
  bool rescore = true;  // objectness target IoU(prediction, truth) (YOLO v1), else 1
};

// Decoding for evaluation and inference.
struct YoloDetectSpec {
  double score_threshold = 0.01;  // confidence x class probability below this is dropped
  double nms_iou = 0.5;           // per-class NMS: overlaps above this are suppressed
};

class YoloSpec final : public TaskSpec {
 public:
  YoloDataSpec data;
  YoloModelSpec model;
  YoloLossSpec loss;
  YoloDetectSpec detect;

  std::unique_ptr<TaskSpec> Clone() const override { return std::make_unique<YoloSpec>(*this); }
  std::vector<SpecReader::Field> DataFields(SpecReader& reader) override;
  std::vector<SpecReader::Field> Sections(SpecReader& reader) override;
  void Finish(SpecReader& reader, const JobSpec& spec) override;
  void EmitDataFields(YAML::Emitter& out) const override;
  void EmitSections(YAML::Emitter& out) const override;
  ResourceEstimate EstimateNeeds(const JobSpec& spec) const override;
};

void RegisterYoloSpec(TaskSpecRegistry& registry);

}  // namespace dtrain

#endif  // DTRAIN_RUNTIME_SPEC_TASKS_YOLO_H_
