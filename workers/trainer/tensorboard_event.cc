#include "workers/trainer/tensorboard_event.h"

#include <cstring>

namespace dtrain::trainer {
namespace {

// Wire types (https://protobuf.dev/programming-guides/encoding/).
constexpr uint32_t kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5;

// Field numbers of proto/tensorboard/event.proto.
constexpr uint32_t kEventWallTime = 1, kEventStep = 2, kEventFileVersion = 3, kEventSummary = 5;
constexpr uint32_t kSummaryValue = 1;
constexpr uint32_t kValueTag = 1, kValueSimpleValue = 2, kValueImage = 4;
constexpr uint32_t kImageHeight = 1, kImageWidth = 2, kImageColorspace = 3, kImageEncoded = 4;

void Varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void Key(std::string& out, uint32_t field, uint32_t wire_type) {
  Varint(out, (static_cast<uint64_t>(field) << 3) | wire_type);
}

void LittleEndian(std::string& out, uint64_t bits, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((bits >> (8 * i)) & 0xFF));
}

void Bytes(std::string& out, uint32_t field, const std::string& bytes) {
  Key(out, field, kLengthDelimited);
  Varint(out, bytes.size());
  out += bytes;
}

// proto3 leaves fields at their default out, as the generated serializer does; int32/int64 are
// varints of the two's-complement 64-bit value.
void Int(std::string& out, uint32_t field, int64_t v) {
  if (v == 0) return;
  Key(out, field, kVarint);
  Varint(out, static_cast<uint64_t>(v));
}

void WallTime(std::string& out, double wall_time) {
  uint64_t bits;
  std::memcpy(&bits, &wall_time, sizeof(bits));
  if (bits == 0) return;  // +0.0 is the default; -0.0 is written, as protobuf does
  Key(out, kEventWallTime, kFixed64);
  LittleEndian(out, bits, 8);
}

std::string SummaryEvent(double wall_time, int64_t step, const std::string& value) {
  std::string summary;
  Bytes(summary, kSummaryValue, value);
  std::string event;
  WallTime(event, wall_time);
  Int(event, kEventStep, step);
  Bytes(event, kEventSummary, summary);
  return event;
}

}  // namespace

std::string EncodeFileVersionEvent(double wall_time, const std::string& version) {
  std::string event;
  WallTime(event, wall_time);
  Bytes(event, kEventFileVersion, version);  // a oneof member is written even when empty
  return event;
}

std::string EncodeScalarEvent(double wall_time, int64_t step, const std::string& tag, float value) {
  std::string v;
  if (!tag.empty()) Bytes(v, kValueTag, tag);
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  Key(v, kValueSimpleValue, kFixed32);  // a oneof member: written even when 0
  LittleEndian(v, bits, 4);
  return SummaryEvent(wall_time, step, v);
}

std::string EncodeImageEvent(double wall_time, int64_t step, const std::string& tag, int height,
                             int width, int colorspace, const std::string& png) {
  std::string image;
  Int(image, kImageHeight, height);
  Int(image, kImageWidth, width);
  Int(image, kImageColorspace, colorspace);
  if (!png.empty()) Bytes(image, kImageEncoded, png);
  std::string v;
  if (!tag.empty()) Bytes(v, kValueTag, tag);
  Bytes(v, kValueImage, image);
  return SummaryEvent(wall_time, step, v);
}

}  // namespace dtrain::trainer
