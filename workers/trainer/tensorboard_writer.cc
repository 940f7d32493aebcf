#include "workers/trainer/tensorboard_writer.h"

#include <stb_image_write.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "workers/trainer/tensorboard_event.h"
#include "workers/trainer/tensorboard_record.h"

namespace dtrain::trainer {
namespace {

namespace fs = std::filesystem;

// Often enough that a live TensorBoard shows the run as it goes; rarely enough to cost nothing.
constexpr double kFlushIntervalSeconds = 2.0;
constexpr size_t kMaxTagBytes = 256;

double WallTime() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

double MonotonicSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string HostName() {
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') return "localhost";
  std::string name = host;
  for (char& c : name) {  // a file name: keep it to a safe alphabet
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.') c = '_';
  }
  return name;
}

Status CheckTag(const std::string& tag) {
  if (tag.empty() || tag.size() > kMaxTagBytes) {
    return InvalidArgument("TensorBoard tag '" + tag.substr(0, kMaxTagBytes) + "': expected 1 to " +
                           std::to_string(kMaxTagBytes) + " bytes, got " +
                           std::to_string(tag.size()));
  }
  return Status::Ok();
}

void AppendToString(void* context, void* data, int size) {
  static_cast<std::string*>(context)->append(static_cast<const char*>(data),
                                             static_cast<size_t>(size));
}

StatusOr<std::string> EncodePng(const std::string& tag, const SummaryImage& image) {
  const std::string what = "TensorBoard image '" + tag + "'";
  if (image.width < 1 || image.width > kMaxSummaryImageSide || image.height < 1 ||
      image.height > kMaxSummaryImageSide) {
    return InvalidArgument(what + ": expected sides in [1, " +
                           std::to_string(kMaxSummaryImageSide) + "], got " +
                           std::to_string(image.width) + "x" + std::to_string(image.height));
  }
  if (image.channels < 1 || image.channels > 4) {
    return InvalidArgument(what + ": expected 1 to 4 channels, got " +
                           std::to_string(image.channels));
  }
  const size_t expected = static_cast<size_t>(image.width) * static_cast<size_t>(image.height) *
                          static_cast<size_t>(image.channels);
  if (image.pixels.size() != expected) {
    return InvalidArgument(what + ": expected " + std::to_string(expected) +
                           " pixel bytes (width x height x channels), got " +
                           std::to_string(image.pixels.size()));
  }
  std::string png;
  if (!stbi_write_png_to_func(AppendToString, &png, image.width, image.height, image.channels,
                              image.pixels.data(), image.width * image.channels)) {
    return Internal(what + ": PNG encoding failed");
  }
  return png;
}

}  // namespace

StatusOr<std::unique_ptr<TensorBoardWriter>> TensorBoardWriter::Open(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Internal("cannot create TensorBoard directory '" + dir + "': " + ec.message());
  const double now = WallTime();
  const std::string path =
      (fs::path(dir) / (kEventFilePrefix + std::to_string(static_cast<int64_t>(now)) + "." +
                        HostName() + "." + std::to_string(::getpid())))
          .string();
  std::FILE* file = std::fopen(path.c_str(), "wbx");  // never append to another writer's file
  if (file == nullptr) {
    return Internal("cannot create TensorBoard event file '" + path + "': " + std::strerror(errno));
  }
  std::unique_ptr<TensorBoardWriter> writer(new TensorBoardWriter(path, file));
  DTRAIN_RETURN_IF_ERROR(writer->WriteRecord(EncodeFileVersionEvent(now, "brain.Event:2")));
  DTRAIN_RETURN_IF_ERROR(writer->Flush());
  return writer;
}

TensorBoardWriter::TensorBoardWriter(std::string path, std::FILE* file)
    : path_(std::move(path)), file_(file), last_flush_s_(MonotonicSeconds()) {}

TensorBoardWriter::~TensorBoardWriter() { std::fclose(file_); }

Status TensorBoardWriter::AddScalar(const std::string& tag, int64_t step, double value) {
  DTRAIN_RETURN_IF_ERROR(CheckTag(tag));
  return WriteRecord(EncodeScalarEvent(WallTime(), step, tag, static_cast<float>(value)));
}

Status TensorBoardWriter::AddImage(const std::string& tag, int64_t step,
                                   const SummaryImage& image) {
  DTRAIN_RETURN_IF_ERROR(CheckTag(tag));
  DTRAIN_ASSIGN_OR_RETURN(std::string png, EncodePng(tag, image));
  return WriteRecord(
      EncodeImageEvent(WallTime(), step, tag, image.height, image.width, image.channels, png));
}

Status TensorBoardWriter::WriteRecord(const std::string& serialized_event) {
  const std::string record = FrameTfRecord(serialized_event);
  if (std::fwrite(record.data(), 1, record.size(), file_) != record.size()) {
    const int err = errno;
    return Status(err == ENOSPC ? StatusCode::kResourceExhausted : StatusCode::kInternal,
                  "writing TensorBoard event file '" + path_ + "': " + std::strerror(err));
  }
  if (MonotonicSeconds() - last_flush_s_ >= kFlushIntervalSeconds) return Flush();
  return Status::Ok();
}

Status TensorBoardWriter::Flush() {
  last_flush_s_ = MonotonicSeconds();
  if (std::fflush(file_) != 0) {
    const int err = errno;
    return Status(err == ENOSPC ? StatusCode::kResourceExhausted : StatusCode::kInternal,
                  "writing TensorBoard event file '" + path_ + "': " + std::strerror(err));
  }
  return Status::Ok();
}

}  // namespace dtrain::trainer
