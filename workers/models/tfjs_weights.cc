#include "workers/models/tfjs_weights.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace dtrain::models {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// Every read below assembles values from bytes, so the result does not depend on the host's
// endianness (TF.js always writes little-endian).
uint32_t ReadLe32(const uint8_t* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}
uint16_t ReadLe16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | p[1] << 8); }

float BitsToFloat(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h >> 15) << 31;
  const int exponent = (h >> 10) & 0x1f;
  const uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24
    const float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
    return sign ? -magnitude : magnitude;
  }
  if (exponent == 31) return BitsToFloat(sign | 0x7f800000u | mantissa << 13);  // inf / NaN
  return BitsToFloat(sign | static_cast<uint32_t>(exponent - 15 + 127) << 23 | mantissa << 13);
}

// How one tensor's values are stored in the shard bytes.
struct Encoding {
  enum Kind { kFloat32, kUint8, kUint16, kFloat16 } kind = kFloat32;
  size_t bytes = 4;  // per value
  double scale = 1;
  double min = 0;
};

StatusOr<Encoding> ParseEncoding(const json& weight, const std::string& name) {
  const std::string dtype = weight.value("dtype", "");
  if (dtype != "float32") {
    return InvalidArgument("tensor " + name + " has dtype '" + dtype +
                           "'; only float32 tensors (optionally quantised) are supported");
  }
  Encoding e;
  if (!weight.contains("quantization")) return e;
  const json& q = weight["quantization"];
  const std::string qtype = q.is_object() ? q.value("dtype", "") : "";
  if (qtype == "float16") {
    e.kind = Encoding::kFloat16;
    e.bytes = 2;
    return e;
  }
  if (qtype != "uint8" && qtype != "uint16") {
    return InvalidArgument("tensor " + name + " has quantization dtype '" + qtype +
                           "'; supported: uint8, uint16, float16");
  }
  if (!q.contains("scale") || !q["scale"].is_number() || !q.contains("min") ||
      !q["min"].is_number()) {
    return InvalidArgument("tensor " + name + ": " + qtype +
                           " quantization needs numeric 'scale' and 'min'");
  }
  e.kind = qtype == "uint8" ? Encoding::kUint8 : Encoding::kUint16;
  e.bytes = qtype == "uint8" ? 1 : 2;
  e.scale = q["scale"].get<double>();
  e.min = q["min"].get<double>();
  return e;
}

void Decode(const Encoding& e, const uint8_t* src, size_t count, float* dst) {
  for (size_t i = 0; i < count; ++i) {
    switch (e.kind) {
      case Encoding::kFloat32:
        dst[i] = BitsToFloat(ReadLe32(src + 4 * i));
        break;
      case Encoding::kUint8:
        // In double, then rounded once, as TF.js computes q * scale + min in float64 JS numbers.
        dst[i] = static_cast<float>(src[i] * e.scale + e.min);
        break;
      case Encoding::kUint16:
        dst[i] = static_cast<float>(ReadLe16(src + 2 * i) * e.scale + e.min);
        break;
      case Encoding::kFloat16:
        dst[i] = HalfToFloat(ReadLe16(src + 2 * i));
        break;
    }
  }
}

StatusOr<std::vector<int64_t>> ParseShape(const json& weight, const std::string& name) {
  if (!weight.contains("shape") || !weight["shape"].is_array()) {
    return InvalidArgument("tensor " + name + " has no 'shape' array");
  }
  std::vector<int64_t> shape;
  int64_t count = 1;
  for (const json& d : weight["shape"]) {
    if (!d.is_number_integer() || d.get<int64_t>() < 0) {
      return InvalidArgument("tensor " + name + " has a malformed shape " + weight["shape"].dump());
    }
    shape.push_back(d.get<int64_t>());
    // Guard the byte arithmetic below against absurd shapes.
    if (shape.back() > 0 && count > (int64_t{1} << 40) / shape.back()) {
      return InvalidArgument("tensor " + name + " is implausibly large: " + weight["shape"].dump());
    }
    count *= shape.back();
  }
  return shape;
}

Status ReadFile(const fs::path& path, std::vector<uint8_t>* append_to) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot open weight shard " + path.string());
  append_to->insert(append_to->end(), std::istreambuf_iterator<char>(in),
                    std::istreambuf_iterator<char>());
  if (in.bad()) return DataLoss("error reading weight shard " + path.string());
  return Status::Ok();
}

// Loads one group: its shards as one byte stream, then its tensors in order.
Status LoadGroup(const json& group, const fs::path& dir, std::set<std::string>* seen,
                 std::vector<TfjsTensor>* out) {
  if (!group.is_object() || !group.contains("paths") || !group["paths"].is_array() ||
      !group.contains("weights") || !group["weights"].is_array()) {
    return InvalidArgument("every group needs 'paths' and 'weights' arrays");
  }
  std::vector<uint8_t> bytes;
  std::string shard_list;
  for (const json& p : group["paths"]) {
    if (!p.is_string()) return InvalidArgument("'paths' must hold file names");
    DTRAIN_RETURN_IF_ERROR(ReadFile(dir / p.get<std::string>(), &bytes));
    shard_list += (shard_list.empty() ? "" : " + ") + p.get<std::string>();
  }
  size_t offset = 0;
  for (const json& w : group["weights"]) {
    if (!w.is_object() || !w.contains("name") || !w["name"].is_string()) {
      return InvalidArgument("a weight entry has no 'name'");
    }
    TfjsTensor t;
    t.name = w["name"].get<std::string>();
    if (!seen->insert(t.name).second)
      return InvalidArgument("tensor " + t.name + " is listed twice");
    DTRAIN_ASSIGN_OR_RETURN(t.shape, ParseShape(w, t.name));
    DTRAIN_ASSIGN_OR_RETURN(Encoding e, ParseEncoding(w, t.name));
    size_t count = 1;
    for (int64_t d : t.shape) count *= static_cast<size_t>(d);
    const size_t need = count * e.bytes;
    if (bytes.size() - offset < need) {
      return DataLoss("tensor " + t.name + " " + t.ShapeString() + " needs " +
                      std::to_string(need) + " bytes at offset " + std::to_string(offset) +
                      " but the shards (" + shard_list + ") hold " + std::to_string(bytes.size()) +
                      " bytes in all: truncated or mismatched weight file");
    }
    t.values.resize(count);
    Decode(e, bytes.data() + offset, count, t.values.data());
    offset += need;
    out->push_back(std::move(t));
  }
  if (offset != bytes.size()) {
    return DataLoss("the shards (" + shard_list + ") hold " + std::to_string(bytes.size()) +
                    " bytes but the manifest's tensors use " + std::to_string(offset) +
                    ": manifest and weights do not belong together");
  }
  return Status::Ok();
}

}  // namespace

std::string ShapeToString(const std::vector<int64_t>& shape) {
  std::ostringstream s;
  s << '[';
  for (size_t i = 0; i < shape.size(); ++i) s << (i ? ", " : "") << shape[i];
  s << ']';
  return s.str();
}

std::string TfjsTensor::ShapeString() const { return ShapeToString(shape); }

StatusOr<std::vector<TfjsTensor>> LoadTfjsWeights(const std::string& manifest_path) {
  std::ifstream in(manifest_path);
  if (!in) return NotFound("cannot open weights manifest " + manifest_path);
  json manifest;
  try {
    manifest = json::parse(in);
  } catch (const json::exception& e) {
    return InvalidArgument("weights manifest " + manifest_path + " is not valid JSON: " + e.what());
  }
  // A layers model's model.json carries the same array as its "weightsManifest".
  if (manifest.is_object() && manifest.contains("weightsManifest")) {
    json groups = std::move(manifest["weightsManifest"]);
    manifest = std::move(groups);
  }
  if (!manifest.is_array()) {
    return InvalidArgument("weights manifest " + manifest_path +
                           " must be a JSON array of groups, or a layers model.json with a "
                           "'weightsManifest' array");
  }
  const fs::path dir = fs::path(manifest_path).parent_path();
  std::vector<TfjsTensor> tensors;
  std::set<std::string> seen;
  for (size_t g = 0; g < manifest.size(); ++g) {
    Status s;
    try {
      s = LoadGroup(manifest[g], dir, &seen, &tensors);
    } catch (const json::exception& e) {  // a field of the wrong JSON type
      s = InvalidArgument(e.what());
    }
    if (!s.ok()) {
      return s.WithContext("weights manifest " + manifest_path + ", group " + std::to_string(g));
    }
  }
  return tensors;
}

}  // namespace dtrain::models
