#include "workers/models/safetensors.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

namespace dtrain::models {
namespace {

using json = nlohmann::json;

StatusOr<SafetensorsTensor> ReadTensor(const std::string& name, const json& entry,
                                       std::ifstream& in, uint64_t data_start, uint64_t data_size,
                                       const std::string& path) {
  const std::string where = path + ": tensor " + name;
  if (!entry.is_object() || !entry.contains("dtype") || !entry.contains("shape") ||
      !entry.contains("data_offsets")) {
    return InvalidArgument(where + " needs 'dtype', 'shape' and 'data_offsets'");
  }
  const std::string dtype = entry["dtype"].is_string() ? entry["dtype"].get<std::string>() : "?";
  if (dtype != "F32") {
    return InvalidArgument(where + " has dtype " + dtype +
                           "; only F32 is read (convert with .float() before saving)");
  }
  SafetensorsTensor t;
  uint64_t count = 1;
  for (const json& d : entry["shape"]) {
    if (!d.is_number_unsigned()) return InvalidArgument(where + " has a malformed shape");
    t.shape.push_back(d.get<int64_t>());
    if (t.shape.back() > 0 && count > (uint64_t{1} << 40) / static_cast<uint64_t>(t.shape.back()))
      return InvalidArgument(where + " is implausibly large");
    count *= static_cast<uint64_t>(t.shape.back());
  }
  const json& offsets = entry["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
      !offsets[1].is_number_unsigned()) {
    return InvalidArgument(where + ": 'data_offsets' must be [begin, end]");
  }
  const uint64_t begin = offsets[0].get<uint64_t>(), end = offsets[1].get<uint64_t>();
  if (end < begin || end - begin != count * 4) {
    return InvalidArgument(where + ": data_offsets [" + std::to_string(begin) + ", " +
                           std::to_string(end) + "] do not hold " + std::to_string(count) +
                           " float32 values");
  }
  if (end > data_size) {
    return DataLoss(where + " ends at byte " + std::to_string(end) + " of the data, but the file " +
                    "holds " + std::to_string(data_size) + ": truncated?");
  }
  std::vector<char> bytes(count * 4);
  in.seekg(static_cast<std::streamoff>(data_start + begin));
  in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!in) return DataLoss(where + ": read failed");
  t.values.resize(count);
  for (uint64_t i = 0; i < count; ++i) {  // little-endian on any host
    const auto* p = reinterpret_cast<const uint8_t*>(bytes.data() + 4 * i);
    const uint32_t bits =
        uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
    std::memcpy(&t.values[i], &bits, 4);
  }
  return t;
}

}  // namespace

StatusOr<std::map<std::string, SafetensorsTensor>> LoadSafetensors(const std::string& path) {
  std::error_code ec;
  const uint64_t file_size = std::filesystem::file_size(path, ec);
  if (ec) return NotFound("cannot open safetensors file " + path + ": " + ec.message());
  if (file_size > kMaxSafetensorsFileBytes) {
    return InvalidArgument(path + " is " + std::to_string(file_size) + " bytes, over the " +
                           std::to_string(kMaxSafetensorsFileBytes) + "-byte limit");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot open safetensors file " + path);
  uint8_t length_bytes[8];
  if (file_size < 8 || !in.read(reinterpret_cast<char*>(length_bytes), 8)) {
    return DataLoss(path + " is too short for a safetensors header");
  }
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = header_size << 8 | length_bytes[i];
  if (header_size > kMaxSafetensorsHeaderBytes || header_size > file_size - 8) {
    return DataLoss(path + " announces a " + std::to_string(header_size) + "-byte header in a " +
                    std::to_string(file_size) + "-byte file: not safetensors, or truncated");
  }
  std::string header_text(header_size, '\0');
  in.read(header_text.data(), static_cast<std::streamsize>(header_size));
  json header;
  try {
    header = json::parse(header_text);
  } catch (const json::exception& e) {
    return InvalidArgument(path + ": the header is not valid JSON: " + e.what());
  }
  if (!header.is_object()) return InvalidArgument(path + ": the header must be a JSON object");
  std::map<std::string, SafetensorsTensor> tensors;
  const uint64_t data_start = 8 + header_size;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") continue;
    DTRAIN_ASSIGN_OR_RETURN(SafetensorsTensor t,
                            ReadTensor(name, entry, in, data_start, file_size - data_start, path));
    tensors.emplace(name, std::move(t));
  }
  return tensors;
}

}  // namespace dtrain::models
