#include "workers/trainer/tensor_comm.h"

namespace dtrain::trainer {

StatusOr<comm::BufferRef> AsBuffer(const at::Tensor& tensor) {
  // Dense in any dimension order (a channels-last weight) is one block of numel() elements from
  // data_ptr(); every rank lays the same tensor out the same way, so the blocks correspond.
  if (!tensor.is_non_overlapping_and_dense()) {
    return InvalidArgument("collective on a tensor that is not one dense block");
  }
  comm::DataType type;
  switch (tensor.scalar_type()) {
    case at::kFloat:
      type = comm::DataType::kFloat32;
      break;
    case at::kDouble:
      type = comm::DataType::kFloat64;
      break;
    case at::kInt:
      type = comm::DataType::kInt32;
      break;
    case at::kLong:
      type = comm::DataType::kInt64;
      break;
    case at::kByte:
      type = comm::DataType::kUInt8;
      break;
    case at::kBFloat16:
      type = comm::DataType::kBFloat16;
      break;
    default:
      return InvalidArgument(std::string("collective on unsupported dtype ") +
                             c10::toString(tensor.scalar_type()));
  }
  return comm::BufferRef{tensor.data_ptr(), static_cast<size_t>(tensor.numel()), type};
}

Status AllReduce(comm::Communicator& comm, const at::Tensor& tensor, comm::ReduceOp op) {
  DTRAIN_ASSIGN_OR_RETURN(comm::BufferRef buffer, AsBuffer(tensor));
  return comm.AllReduce(buffer, op);
}

Status Broadcast(comm::Communicator& comm, const at::Tensor& tensor, int root) {
  DTRAIN_ASSIGN_OR_RETURN(comm::BufferRef buffer, AsBuffer(tensor));
  return comm.Broadcast(buffer, root);
}

}  // namespace dtrain::trainer
