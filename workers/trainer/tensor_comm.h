// Glue between torch tensors and the torch-free Communicator.
#ifndef DTRAIN_WORKERS_TRAINER_TENSOR_COMM_H_
#define DTRAIN_WORKERS_TRAINER_TENSOR_COMM_H_

#include <ATen/core/Tensor.h>

#include "runtime/comm/communicator.h"

namespace dtrain::trainer {

// A BufferRef over a contiguous tensor's storage. The tensor must outlive any collective on it.
StatusOr<comm::BufferRef> AsBuffer(const at::Tensor& tensor);

// Blocking conveniences used outside the hot path.
Status AllReduce(comm::Communicator& comm, const at::Tensor& tensor, comm::ReduceOp op);
Status Broadcast(comm::Communicator& comm, const at::Tensor& tensor, int root);

}  // namespace dtrain::trainer

#endif  // DTRAIN_WORKERS_TRAINER_TENSOR_COMM_H_
