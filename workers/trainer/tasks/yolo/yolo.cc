#include "workers/trainer/tasks/yolo/yolo.h"

#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>

#include "runtime/data/detection/average_precision.h"
#include "runtime/data/detection/box_augment.h"
#include "runtime/data/detection/draw_boxes.h"
#include "runtime/data/detection/grid_decode.h"
#include "runtime/data/detection/scene_generator.h"
#include "runtime/data/detection/yolo_labels.h"
#include "runtime/spec/tasks/yolo.h"
#include "workers/trainer/tasks/yolo/yolo_loss.h"
#include "workers/trainer/tasks/yolo/yolo_net.h"

namespace dtrain::trainer {
namespace {

namespace fs = std::filesystem;

// Evaluation pictures for TensorBoard: this many images, enlarged to this side so that the
// labels on the boxes can be read.
constexpr size_t kPicturedImages = 4;
constexpr int kPicturedSide = 256;
// mAP needs every detection down to detect.score_threshold (0.01), but a picture with all of
// them is a wall of labels; what a user judges by eye is what `dtrain-worker detect` would
// report at its default, so the pictures draw only boxes at or above this score.
constexpr double kPicturedMinScore = 0.3;  // detect --threshold default

// Rank 0 composes the set when the spec asks for it and it is missing; the others wait.
Status EnsureGenerated(const JobSpec& spec, const YoloSpec& yolo, const TaskContext& context) {
  if (!yolo.data.generate) return Status::Ok();
  Status local = Status::Ok();
  if (context.rank == 0 && !fs::exists(spec.data.path)) {
    data::SceneGenOptions options;
    options.out_dir = spec.data.path;
    options.train = yolo.data.generate_train;
    options.test = yolo.data.generate_test;
    options.size = yolo.data.image_size;
    options.seed = spec.data.seed + 1;
    auto report = data::GenerateScenes(options);
    if (!report.ok()) {
      local = report.status().WithContext("data.generate: writing '" + spec.data.path + "'");
    } else {
      std::fprintf(stderr,
                   "[dtrain] generated detection set in %s: %d images, %d objects, %d + %d "
                   "background photos (train + test)\n",
                   spec.data.path.c_str(), report->images, report->objects, report->train_photos,
                   report->test_photos);
    }
  }
  if (context.comm != nullptr) {
    int32_t failed = local.ok() ? 0 : 1;
    DTRAIN_RETURN_IF_ERROR(
        context.comm->AllReduce({&failed, 1, comm::DataType::kInt32}, comm::ReduceOp::kMax));
    if (failed && local.ok()) return Aborted("rank 0 failed to generate '" + spec.data.path + "'");
  }
  return local;
}

at::Tensor BoxesTensor(const std::vector<data::LabelledBox>& boxes) {
  at::Tensor t = torch::zeros({static_cast<int64_t>(boxes.size()), 5});
  auto a = t.accessor<float, 2>();
  for (size_t i = 0; i < boxes.size(); ++i) {
    a[i][0] = static_cast<float>(boxes[i].cls);
    a[i][1] = static_cast<float>(boxes[i].box.cx);
    a[i][2] = static_cast<float>(boxes[i].box.cy);
    a[i][3] = static_cast<float>(boxes[i].box.w);
    a[i][4] = static_cast<float>(boxes[i].box.h);
  }
  return t;
}

class YoloTask final : public Task {
 public:
  YoloTask(const JobSpec& spec, const YoloSpec& yolo, const TaskContext& context)
      : spec_(spec),
        yolo_(yolo),
        context_(context),
        rng_(spec.train.seed * 1000003 + static_cast<uint64_t>(context.rank)) {}

  Status Init() {
    DTRAIN_RETURN_IF_ERROR(EnsureGenerated(spec_, yolo_, context_));
    const int side = yolo_.data.image_size;
    const std::string root = spec_.data.path;
    DTRAIN_ASSIGN_OR_RETURN(train_,
                            data::LoadDetectionFolder((fs::path(root) / "train").string(), side));
    DTRAIN_ASSIGN_OR_RETURN(test_,
                            data::LoadDetectionFolder((fs::path(root) / "test").string(), side));
    if (test_.class_names != train_.class_names) {
      return InvalidArgument("'" + root + "/test/classes.txt' differs from '" + root +
                             "/train/classes.txt': both splits must name the same classes");
    }
    const int classes = static_cast<int>(train_.class_names.size());
    if (yolo_.model.classes != 0 && yolo_.model.classes != classes) {
      return InvalidArgument("model.classes is " + std::to_string(yolo_.model.classes) + " but '" +
                             root + "/train/classes.txt' names " + std::to_string(classes));
    }
    shape_ = {yolo_.model.cells, yolo_.model.boxes, classes};

    std::vector<size_t> order(train_.count());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::mt19937_64 split_rng(spec_.data.seed);
    std::shuffle(order.begin(), order.end(), split_rng);
    const size_t n_train = std::clamp<size_t>(
        static_cast<size_t>(yolo_.data.split * static_cast<double>(order.size())), 1,
        std::max<size_t>(1, order.size() - 1));
    training_.indices.assign(order.begin(), order.begin() + n_train);
    validation_.assign(order.begin() + n_train, order.end());

    size_t objects = 0;
    for (const auto& b : train_.boxes) objects += b.size();
    report_.push_back("data: " + root + ": train/ " + std::to_string(train_.count()) + " images (" +
                      std::to_string(objects) + " objects; " +
                      std::to_string(training_.indices.size()) + " trained on, " +
                      std::to_string(validation_.size()) + " validate), test/ " +
                      std::to_string(test_.count()) + " images, " + std::to_string(side) + "x" +
                      std::to_string(side));
    std::string names;
    for (const std::string& n : train_.class_names) names += (names.empty() ? "" : ", ") + n;
    report_.push_back("classes (" + std::to_string(classes) + "): " + names + "; grid " +
                      std::to_string(shape_.cells) + "x" + std::to_string(shape_.cells) + ", " +
                      std::to_string(shape_.boxes) + " boxes per cell");

    device_ = context_.use_cuda ? torch::Device(torch::kCUDA, context_.cuda_device)
                                : torch::Device(torch::kCPU);
    net_ = YoloNet(yolo_.model, shape_);
    net_->to(device_);
    loss_options_.lambda_coord = yolo_.loss.lambda_coord;
    loss_options_.lambda_noobj = yolo_.loss.lambda_noobj;
    loss_options_.rescore = yolo_.loss.rescore;
    return Status::Ok();
  }

  std::shared_ptr<torch::nn::Module> model() override { return net_.ptr(); }
  const TrainingSet& training_set() const override { return training_; }

  Batch GetBatch(const std::vector<size_t>& ids) const override {
    const int side = train_.size;
    std::vector<uint8_t> pixels;
    pixels.reserve(ids.size() * train_.image_bytes());
    Batch batch;
    std::uniform_real_distribution<double> u(0, 1);
    for (size_t id : ids) {
      data::BoxedImage image;
      image.height = image.width = side;
      image.pixels.assign(train_.image(id), train_.image(id) + train_.image_bytes());
      image.boxes = train_.boxes[id];
      if (yolo_.data.flip && u(rng_) < 0.5) data::FlipHorizontal(&image);
      if (yolo_.data.max_zoom > 1) {
        const double u1 = u(rng_), u2 = u(rng_), u3 = u(rng_);
        image = data::CropAndResize(image, data::RandomZoomWindow(yolo_.data.max_zoom, u1, u2, u3),
                                    side, side);
      }
      pixels.insert(pixels.end(), image.pixels.begin(), image.pixels.end());
      batch.ragged_targets.push_back(BoxesTensor(image.boxes));
    }
    batch.inputs = YoloInput(pixels.data(), static_cast<int64_t>(ids.size()), side).to(device_);
    return batch;
  }

  at::Tensor Loss(const Batch& batch) override {
    YoloLossTerms terms =
        YoloLoss(net_->forward(batch.inputs), batch.ragged_targets, shape_, loss_options_);
    const double n = static_cast<double>(batch.inputs.size(0));
    auto add = [&](const char* name, const at::Tensor& value) {
      StepStatistic& s = statistics_[name];
      s.numerator += value.item<double>() * n;
      s.denominator += n;
    };
    add("loss_xy", terms.xy);
    add("loss_wh", terms.wh);
    add("loss_object", terms.object);
    add("loss_no_object", terms.no_object);
    add("loss_classes", terms.classes);
    return terms.total;
  }

  std::map<std::string, StepStatistic> TakeStepStatistics() override {
    std::map<std::string, StepStatistic> out;
    for (const char* name :
         {"loss_xy", "loss_wh", "loss_object", "loss_no_object", "loss_classes"}) {
      out[name] = statistics_[name];
    }
    statistics_.clear();
    return out;
  }

  StatusOr<Evaluation> Evaluate(comm::Communicator& comm, EvalSplit split) override {
    const bool test = split == EvalSplit::kTest;
    const data::DetectionSet& set = test ? test_ : train_;
    std::vector<size_t> ids = validation_;
    if (test) {
      ids.resize(test_.count());
      for (size_t i = 0; i < ids.size(); ++i) ids[i] = i;
    }
    // Each rank decodes its shard (ids r, r + world, ...) into a slot per image: a count and up
    // to S*S*B detections of 6 floats; summing the zero-filled slots gathers them everywhere.
    const size_t max_detections = static_cast<size_t>(shape_.cells) * shape_.cells * shape_.boxes;
    const size_t slot = 1 + max_detections * 6;
    std::vector<float> gathered(ids.size() * slot, 0.0f);
    const bool was_training = net_->is_training();
    net_->eval();
    {
      torch::NoGradGuard no_grad;
      constexpr size_t kEvalBatch = 128;
      std::vector<size_t> shard;
      for (size_t k = comm.rank(); k < ids.size(); k += comm.size()) shard.push_back(k);
      for (size_t start = 0; start < shard.size(); start += kEvalBatch) {
        const size_t end = std::min(shard.size(), start + kEvalBatch);
        std::vector<uint8_t> pixels;
        for (size_t k = start; k < end; ++k) {
          const uint8_t* image = set.image(ids[shard[k]]);
          pixels.insert(pixels.end(), image, image + set.image_bytes());
        }
        at::Tensor grid =
            net_->forward(YoloInput(pixels.data(), static_cast<int64_t>(end - start), set.size)
                              .to(device_))
                .to(torch::kCPU)
                .contiguous();
        for (size_t k = start; k < end; ++k) {
          const std::vector<data::Detection> found =
              data::DecodeGridWithNms(grid.data_ptr<float>() + (k - start) * shape_.size(), shape_,
                                      yolo_.detect.score_threshold, yolo_.detect.nms_iou);
          float* out = gathered.data() + shard[k] * slot;
          out[0] = static_cast<float>(found.size());
          for (size_t d = 0; d < found.size(); ++d) {
            float* v = out + 1 + d * 6;
            v[0] = static_cast<float>(found[d].cls);
            v[1] = static_cast<float>(found[d].score);
            v[2] = static_cast<float>(found[d].box.cx);
            v[3] = static_cast<float>(found[d].box.cy);
            v[4] = static_cast<float>(found[d].box.w);
            v[5] = static_cast<float>(found[d].box.h);
          }
        }
      }
    }
    if (was_training) net_->train();
    DTRAIN_RETURN_IF_ERROR(comm.AllReduce(
        {gathered.data(), gathered.size(), comm::DataType::kFloat32}, comm::ReduceOp::kSum));
    std::vector<data::ImageDetections> images(ids.size());
    size_t predicted = 0, truth = 0;
    for (size_t k = 0; k < ids.size(); ++k) {
      images[k].truth = set.boxes[ids[k]];
      truth += images[k].truth.size();
      const float* in = gathered.data() + k * slot;
      const size_t n = static_cast<size_t>(in[0]);
      for (size_t d = 0; d < n; ++d) {
        const float* v = in + 1 + d * 6;
        images[k].predicted.push_back(
            {static_cast<int>(v[0]), v[1], data::Box{v[2], v[3], v[4], v[5]}});
      }
      predicted += n;
    }
    Evaluation eval;
    const double map50 = data::MeanAveragePrecision(images, shape_.classes, 0.5);
    const double map_coco = data::MeanAveragePrecisionCoco(images, shape_.classes);
    eval.metrics["map50"] = map50;
    eval.metrics["map50_95"] = map_coco;
    eval.details["images"] = ids.size();  // a count, not a metric: kept out of the curves
    nlohmann::json per_class = nlohmann::json::object();
    for (int c = 0; c < shape_.classes; ++c) {
      per_class[train_.class_names[c]] = data::AveragePrecision(images, c, 0.5);
    }
    eval.details["ap50_per_class"] = per_class;
    eval.details["truth_boxes"] = truth;
    eval.details["detections"] = predicted;
    char line[256];
    std::snprintf(line, sizeof(line),
                  "mAP@0.5 %.4f  mAP@[.5:.95] %.4f (%zu images, %zu truth boxes, %zu detections "
                  "above score %.3g)",
                  map50, map_coco, ids.size(), truth, predicted, yolo_.detect.score_threshold);
    eval.summary = line;
    if (comm.rank() == 0) {
      // The first few images with what the detector found, for TensorBoard.
      for (size_t k = 0; k < std::min(ids.size(), kPicturedImages); ++k) {
        data::DecodedImage image;
        image.height = image.width = set.size;
        image.channels = 3;
        image.pixels.assign(set.image(ids[k]), set.image(ids[k]) + set.image_bytes());
        std::vector<data::Detection> confident;
        for (const data::Detection& d : images[k].predicted) {
          if (d.score >= kPicturedMinScore) confident.push_back(d);
        }
        const data::DecodedImage drawn =
            data::RenderDetections(image, confident, train_.class_names, kPicturedSide);
        eval.images.push_back(
            {std::string(test ? "test" : "validation") + "/detections_" + std::to_string(k),
             SummaryImage{drawn.width, drawn.height, 3, drawn.pixels}});
      }
    }
    return eval;
  }

  std::string primary_metric() const override { return "map50"; }
  std::vector<std::string> DataReport() const override { return report_; }

  Status SaveArtifacts(const std::string& output_dir, const Evaluation&) override {
    const std::string path = (fs::path(output_dir) / kYoloClassesFile).string();
    std::ofstream out(path);
    for (const std::string& name : train_.class_names) out << name << "\n";
    out.close();
    if (!out) return Internal("cannot write '" + path + "'");
    return Status::Ok();
  }

 private:
  const JobSpec spec_;
  const YoloSpec yolo_;
  const TaskContext context_;
  data::DetectionSet train_, test_;
  data::GridShape shape_;
  TrainingSet training_;
  std::vector<size_t> validation_;
  std::vector<std::string> report_;
  torch::Device device_{torch::kCPU};
  YoloNet net_{nullptr};
  YoloLossOptions loss_options_;
  mutable std::mt19937_64 rng_;  // augmentation draws (GetBatch is const for the trainer)
  std::map<std::string, StepStatistic> statistics_;
};

StatusOr<std::unique_ptr<Task>> MakeYoloTask(const JobSpec& spec, const TaskContext& context) {
  const auto* yolo = spec.TaskSpecAs<YoloSpec>();
  if (yolo == nullptr) return InvalidArgument("job '" + spec.name + "' is not a yolo job");
  auto task = std::make_unique<YoloTask>(spec, *yolo, context);
  DTRAIN_RETURN_IF_ERROR(task->Init());
  return std::unique_ptr<Task>(std::move(task));
}

}  // namespace

void RegisterYoloTask(TaskRegistry& registry) { (void)registry.Register("yolo", MakeYoloTask); }

}  // namespace dtrain::trainer
