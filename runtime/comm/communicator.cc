#include "runtime/comm/communicator.h"

namespace dtrain::comm {

size_t DataTypeSize(DataType type) {
  switch (type) {
    case DataType::kFloat32:
      return 4;
    case DataType::kFloat64:
      return 8;
    case DataType::kInt32:
      return 4;
    case DataType::kInt64:
      return 8;
    case DataType::kUInt8:
      return 1;
    case DataType::kBFloat16:
      return 2;
  }
  return 0;
}

const char* DataTypeName(DataType type) {
  switch (type) {
    case DataType::kFloat32:
      return "float32";
    case DataType::kFloat64:
      return "float64";
    case DataType::kInt32:
      return "int32";
    case DataType::kInt64:
      return "int64";
    case DataType::kUInt8:
      return "uint8";
    case DataType::kBFloat16:
      return "bfloat16";
  }
  return "?";
}

const char* ReduceOpName(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return "sum";
    case ReduceOp::kAvg:
      return "avg";
    case ReduceOp::kMax:
      return "max";
    case ReduceOp::kMin:
      return "min";
  }
  return "?";
}

namespace {
class CompletedHandle final : public CollectiveHandle {
 public:
  explicit CompletedHandle(Status status) : status_(std::move(status)) {}
  Status Wait() override { return status_; }
  bool IsCompleted() override { return true; }

 private:
  Status status_;
};
}  // namespace

std::unique_ptr<CollectiveHandle> MakeCompletedHandle(Status status) {
  return std::make_unique<CompletedHandle>(std::move(status));
}

Status ValidateAllGather(int rank, int size, const BufferRef& send, const BufferRef& recv) {
  if (send.type != recv.type) {
    return InvalidArgument("rank " + std::to_string(rank) + ": allgather: send is " +
                           DataTypeName(send.type) + " but recv is " + DataTypeName(recv.type));
  }
  if (recv.count != send.count * static_cast<size_t>(size)) {
    return InvalidArgument("rank " + std::to_string(rank) + ": allgather: recv holds " +
                           std::to_string(recv.count) + " elements, expected world size " +
                           std::to_string(size) + " x " + std::to_string(send.count));
  }
  return Status::Ok();
}

Status ValidateRoot(int rank, int size, int root, const char* op) {
  if (root < 0 || root >= size) {
    return InvalidArgument("rank " + std::to_string(rank) + ": " + op + ": root " +
                           std::to_string(root) + " is outside [0, " + std::to_string(size) + ")");
  }
  return Status::Ok();
}

}  // namespace dtrain::comm
