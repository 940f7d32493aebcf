#include "runtime/spec/tasks/yolo.h"

#include <algorithm>
#include <cmath>

#include "runtime/spec/job_spec.h"

namespace dtrain {
namespace {

using Value = SpecReader::Value;

constexpr int kMaxGeneratedImages = 1000000;
constexpr int kMaxImageSide = 4096;
constexpr int kMaxConvLayers = 8;  // 2^8 = 256: a 7-cell grid from a 1792-pixel image
constexpr int kMaxChannels = 4096;
constexpr int kMaxCells = 64;
constexpr int kMaxBoxes = 16;
constexpr int kMaxClasses = 1000;
constexpr double kMaxLambda = 1000;
constexpr double kMaxZoom = 4;
// The generator writes RGB PNGs.
constexpr int kGeneratedChannels = 3;

}  // namespace

std::vector<SpecReader::Field> YoloSpec::DataFields(SpecReader& r) {
  YoloDataSpec& d = data;
  return {
      {"generate", false, [&r, &d](const Value& f) { r.ReadBool(f, &d.generate); }},
      {"generate_train", false,
       [&r, &d](const Value& f) { r.ReadInt(f, 1, kMaxGeneratedImages, &d.generate_train); }},
      {"generate_test", false,
       [&r, &d](const Value& f) { r.ReadInt(f, 1, kMaxGeneratedImages, &d.generate_test); }},
      {"image_size", false,
       [&r, &d](const Value& f) { r.ReadInt(f, 8, kMaxImageSide, &d.image_size); }},
      {"split", false,
       [&r, &d](const Value& f) {
         r.ReadDouble(f, {0.0, false, 1.0, false}, &d.split);
       }},
      {"flip", false, [&r, &d](const Value& f) { r.ReadBool(f, &d.flip); }},
      {"max_zoom", false,
       [&r, &d](const Value& f) {
         r.ReadDouble(f, {1.0, true, kMaxZoom, true}, &d.max_zoom);
       }},
  };
}

std::vector<SpecReader::Field> YoloSpec::Sections(SpecReader& r) {
  return {
      {"model", false,
       [this, &r](const Value& v) {
         YoloModelSpec& m = model;
         r.ReadMap(
             v, {
                    {"conv_channels", false,
                     [&](const Value& f) {
                       r.ReadIntList(f, 1, kMaxChannels, false, kMaxConvLayers, &m.conv_channels);
                     }},
                    {"head_channels", false,
                     [&](const Value& f) { r.ReadInt(f, 1, kMaxChannels, &m.head_channels); }},
                    {"cells", false, [&](const Value& f) { r.ReadInt(f, 1, kMaxCells, &m.cells); }},
                    {"boxes", false, [&](const Value& f) { r.ReadInt(f, 1, kMaxBoxes, &m.boxes); }},
                    {"classes", false,
                     [&](const Value& f) { r.ReadInt(f, 0, kMaxClasses, &m.classes); }},
                });
       }},
      {"loss", false,
       [this, &r](const Value& v) {
         const DoubleRange lambda{0.0, true, kMaxLambda, true};
         r.ReadMap(v, {
                          {"lambda_coord", false,
                           [&](const Value& f) { r.ReadDouble(f, lambda, &loss.lambda_coord); }},
                          {"lambda_noobj", false,
                           [&](const Value& f) { r.ReadDouble(f, lambda, &loss.lambda_noobj); }},
                          {"rescore", false, [&](const Value& f) { r.ReadBool(f, &loss.rescore); }},
                      });
       }},
      {"detect", false,
       [this, &r](const Value& v) {
         r.ReadMap(v, {
                          {"score_threshold", false,
                           [&](const Value& f) {
                             r.ReadDouble(f, {0.0, true, 1.0, false}, &detect.score_threshold);
                           }},
                          {"nms_iou", false,
                           [&](const Value& f) {
                             r.ReadDouble(f, {0.0, false, 1.0, true}, &detect.nms_iou);
                           }},
                      });
       }},
  };
}

void YoloSpec::Finish(SpecReader& r, const JobSpec&) {
  const int64_t reduction = int64_t{1} << model.conv_channels.size();
  const int64_t expected = reduction * model.cells;
  if (data.image_size == 0) {
    if (expected > kMaxImageSide) {
      r.ErrorAt("model.cells",
                "model.cells x 2^len(model.conv_channels) = " + std::to_string(expected) +
                    " exceeds the largest image side " + std::to_string(kMaxImageSide));
      return;
    }
    data.image_size = static_cast<int>(expected);
  } else if (data.image_size != expected) {
    r.ErrorAt("data.image_size",
              "expected model.cells x 2^len(model.conv_channels) = " + std::to_string(model.cells) +
                  " x " + std::to_string(reduction) + " = " + std::to_string(expected) +
                  " (each conv layer halves the image down to the grid), got " +
                  std::to_string(data.image_size));
  }
}

void YoloSpec::EmitDataFields(YAML::Emitter& out) const {
  out << YAML::Key << "generate" << YAML::Value << data.generate;
  if (data.generate) {
    out << YAML::Key << "generate_train" << YAML::Value << data.generate_train;
    out << YAML::Key << "generate_test" << YAML::Value << data.generate_test;
  }
  out << YAML::Key << "image_size" << YAML::Value << data.image_size;
  out << YAML::Key << "split" << YAML::Value;
  EmitDouble(out, data.split);
  out << YAML::Key << "flip" << YAML::Value << data.flip;
  out << YAML::Key << "max_zoom" << YAML::Value;
  EmitDouble(out, data.max_zoom);
}

void YoloSpec::EmitSections(YAML::Emitter& out) const {
  out << YAML::Key << "model" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "conv_channels" << YAML::Value << YAML::Flow << model.conv_channels;
  out << YAML::Key << "head_channels" << YAML::Value << model.head_channels;
  out << YAML::Key << "cells" << YAML::Value << model.cells;
  out << YAML::Key << "boxes" << YAML::Value << model.boxes;
  out << YAML::Key << "classes" << YAML::Value << model.classes;
  out << YAML::EndMap;
  out << YAML::Key << "loss" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "lambda_coord" << YAML::Value;
  EmitDouble(out, loss.lambda_coord);
  out << YAML::Key << "lambda_noobj" << YAML::Value;
  EmitDouble(out, loss.lambda_noobj);
  out << YAML::Key << "rescore" << YAML::Value << loss.rescore;
  out << YAML::EndMap;
  out << YAML::Key << "detect" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "score_threshold" << YAML::Value;
  EmitDouble(out, detect.score_threshold);
  out << YAML::Key << "nms_iou" << YAML::Value;
  EmitDouble(out, detect.nms_iou);
  out << YAML::EndMap;
}

ResourceEstimate YoloSpec::EstimateNeeds(const JobSpec& spec) const {
  ResourceEstimate e;
  // The classes are known only once classes.txt is read: 10 (Fashion-MNIST) bounds the generated
  // sets, a given model.classes bounds the rest.
  const double classes = model.classes > 0 ? model.classes : 10;
  const double outputs = model.boxes * 5.0 + classes;
  double side = data.image_size, in = 3, params = 0, activations = 0;
  std::string largest = "input";
  double largest_params = 0;
  for (size_t i = 0; i < model.conv_channels.size(); ++i) {
    const double out = model.conv_channels[i];
    const double layer = 9 * in * out + 3 * out;  // conv weights, bias, batch-norm scale/shift
    params += layer;
    if (layer > largest_params) {
      largest_params = layer;
      largest = "conv layer " + std::to_string(i + 1) + ": 3x3x" + FormatCount(in) + "x" +
                FormatCount(out) + " weights";
    }
    activations += side * side * out * 3;  // conv, batch norm, activation
    side /= 2;
    activations += side * side * out;  // pool
    in = out;
  }
  params +=
      9 * in * model.head_channels + model.head_channels + model.head_channels * outputs + outputs;
  activations += side * side * (model.head_channels * 2 + outputs * 2);
  e.parameters = params;
  e.parameters_field = "model.conv_channels";
  e.parameters_detail = largest;
  e.bytes_per_parameter = BytesPerParameter(spec.train.optimizer);
  e.activation_bytes_per_sample = activations * kFloatBytes * kActivationCopiesInTraining;
  e.batch_per_rank = spec.train.batch_size;
  // Every image is held decoded (uint8) and as float32.
  const double images = data.generate ? data.generate_train + data.generate_test : 0;
  e.data_bytes = images * data.image_size * data.image_size * 3 * (1 + kFloatBytes);
  if (data.generate) {
    e.generated_bytes = images * (PngBytesUpperBound(data.image_size, data.image_size,
                                                     kGeneratedChannels) +
                                  256);  // + the label file
    e.generated_field = "data.generate_train";
  }
  ChooseMemoryField("train.batch_size", "data.image_size", &e);
  return e;
}

void RegisterYoloSpec(TaskSpecRegistry& registry) {
  (void)registry.Register(
      {"yolo", "grid object detector (YOLO v1 loss), mAP@0.5 and mAP@[.5:.95] evaluation",
       [] { return std::make_unique<YoloSpec>(); }});
}

}  // namespace dtrain
