#include "runtime/spec/sections/cnn_model.h"

#include <cmath>
#include <string>
#include <vector>

namespace dtrain {
namespace {

std::string Layer(const char* kind, size_t index) {
  return std::string(kind) + " layer " + std::to_string(index + 1);
}

}  // namespace

void ReadCnnModel(SpecReader& r, const SpecReader::Value& v, bool with_embedding, ModelSpec* m) {
  using Value = SpecReader::Value;
  std::vector<SpecReader::Field> fields = {
      {"conv_channels", false,
       [&](const Value& f) {
         r.ReadIntList(f, 1, kMaxChannels, false, kMaxConvLayers, &m->conv_channels);
       }},
      {"kernel_size", false,
       [&](const Value& f) {
         int k = 0;
         if (!r.ReadInt(f, 1, kMaxKernelSize, &k)) return;
         if (k % 2 == 0) {
           r.Expected(f, "an odd integer in [1, " + std::to_string(kMaxKernelSize) + "]");
           return;
         }
         m->kernel_size = k;
       }},
      {"hidden_units", false,
       [&](const Value& f) {
         r.ReadIntList(f, 1, kMaxUnits, true, kMaxHiddenLayers, &m->hidden_units);
       }},
      {"dropout", false,
       [&](const Value& f) { r.ReadDouble(f, DoubleRange::ZeroToOneExclusive(), &m->dropout); }},
      {"batch_norm", false, [&](const Value& f) { r.ReadBool(f, &m->batch_norm); }},
  };
  if (with_embedding) {
    fields.push_back({"embedding_dim", false,
                      [&](const Value& f) { r.ReadInt(f, 1, kMaxUnits, &m->embedding_dim); }});
  }
  r.ReadMap(v, fields);
}

void EmitCnnModel(YAML::Emitter& out, const ModelSpec& m, bool with_embedding) {
  out << YAML::Key << "conv_channels" << YAML::Value << YAML::Flow << m.conv_channels;
  out << YAML::Key << "kernel_size" << YAML::Value << m.kernel_size;
  out << YAML::Key << "hidden_units" << YAML::Value << YAML::Flow << m.hidden_units;
  out << YAML::Key << "dropout" << YAML::Value;
  EmitDouble(out, m.dropout);
  out << YAML::Key << "batch_norm" << YAML::Value << m.batch_norm;
  if (with_embedding) out << YAML::Key << "embedding_dim" << YAML::Value << m.embedding_dim;
}

void EstimateCnn(const ModelSpec& m, const CnnInput& in, ResourceEstimate* e) {
  double largest = -1;
  auto add_layer = [&](double weights, double biases, const std::string& field,
                       const std::string& detail) {
    e->parameters += weights + biases;
    if (weights + biases > largest) {
      largest = weights + biases;
      e->parameters_field = field;
      e->parameters_detail = "largest: " + detail;
    }
  };
  double elements = in.channels * in.height * in.width;              // activations of one sample
  if (in.embedding) elements += in.channels * in.height * in.width;  // standardised copy
  double channels = in.channels, h = in.height, w = in.width;
  const double k = m.kernel_size;
  for (size_t i = 0; i < m.conv_channels.size(); ++i) {
    const double out = m.conv_channels[i];
    const std::string channels_field = "model.conv_channels[" + std::to_string(i) + "]";
    add_layer(out * channels * k * k, out, k * k > out ? "model.kernel_size" : channels_field,
              Layer("conv", i) + ": " + FormatCount(channels) + " -> " + FormatCount(out) +
                  " channels, " + FormatCount(k) + "x" + FormatCount(k) + " kernel");
    if (m.batch_norm) add_layer(0, 2 * out, channels_field, Layer("batch norm", i));
    // Padding keeps the size: the conv output, batch norm, ReLU, then a 2x2 max-pool.
    elements += out * h * w * (m.batch_norm ? 3 : 2);
    if (h >= 2 && w >= 2) {
      h = std::floor(h / 2);
      w = std::floor(w / 2);
      elements += out * h * w;
    }
    channels = out;
  }
  double features = channels * h * w;
  // What sizes the first linear layer's input: the resolution, or the last conv's channels when
  // they outnumber the pixels left.
  std::string features_field = m.conv_channels.empty() ? in.input_field : "model.conv_channels";
  if (!m.conv_channels.empty() && h * w > channels) features_field = in.input_field;
  for (size_t i = 0; i < m.hidden_units.size(); ++i) {
    const double units = m.hidden_units[i];
    const std::string units_field = "model.hidden_units[" + std::to_string(i) + "]";
    add_layer(features * units, units, units >= features ? units_field : features_field,
              Layer("linear", i) + ": " + FormatCount(features) + " x " + FormatCount(units) +
                  " weights");
    elements += units * (m.dropout > 0 ? 3 : 2);  // linear, ReLU, dropout
    features = units;
    features_field = units_field;
  }
  const bool outputs_drive = !in.output_field.empty() && in.outputs >= features;
  add_layer(
      features * in.outputs, in.outputs, outputs_drive ? in.output_field : features_field,
      "output layer: " + FormatCount(features) + " x " + FormatCount(in.outputs) + " weights");
  elements += in.outputs * (in.embedding ? 2 : 1);
  e->activation_bytes_per_sample += elements * kFloatBytes * kActivationCopiesInTraining;
}

}  // namespace dtrain
