// The TensorBoard writer of a build without Protobuf (see proto/CMakeLists.txt): no event files.
#include "workers/trainer/tensorboard_writer.h"

namespace dtrain::trainer {
namespace {

Status Unavailable() {
  return FailedPrecondition(
      "TensorBoard event files are off: this dtrain-worker was built without Protobuf "
      "(install libprotobuf-dev and protobuf-compiler, then reconfigure)");
}

}  // namespace

StatusOr<std::unique_ptr<TensorBoardWriter>> TensorBoardWriter::Open(const std::string&) {
  return Unavailable();
}
TensorBoardWriter::~TensorBoardWriter() = default;
Status TensorBoardWriter::AddScalar(const std::string&, int64_t, double) { return Unavailable(); }
Status TensorBoardWriter::AddImage(const std::string&, int64_t, const SummaryImage&) {
  return Unavailable();
}
Status TensorBoardWriter::Flush() { return Unavailable(); }

}  // namespace dtrain::trainer
