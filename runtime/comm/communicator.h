// Communicator: the one interface the trainer uses for collectives, whatever the transport.
// Backends: MPI (CPU memory, runtime/comm/mpi_communicator.h) and NCCL (CUDA device memory,
// runtime/comm/nccl_communicator.h). Buffers are raw pointers so this library stays torch-free;
// workers/trainer/tensor_comm.h adapts tensors.
//
// Contract shared by all backends:
//  - Collectives are matched across ranks by issue order: every rank must issue the same
//    sequence of collectives (same op, count, dtype, root). Backends execute them in issue order.
//  - *Async methods return immediately; the buffer must stay alive and untouched until the
//    handle's Wait() returns. Wait() never blocks longer than the communicator's timeout: on
//    expiry it returns DEADLINE_EXCEEDED naming the rank, operation and sequence number, and the
//    communicator is poisoned (later calls fail fast) since a half-done collective cannot be
//    cancelled portably. Callers then abort the job instead of hanging.
//  - Once poisoned (a deadline passed, or the liveness monitor found a rank that stopped
//    answering, runtime/comm/liveness.h), every pending Wait() returns at once with the reason,
//    and blamed_rank() names the rank at fault, not the one that noticed.
#ifndef DTRAIN_RUNTIME_COMM_COMMUNICATOR_H_
#define DTRAIN_RUNTIME_COMM_COMMUNICATOR_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "runtime/common/status.h"

namespace dtrain::comm {

// kBFloat16: see runtime/comm/bfloat16.h.
enum class DataType { kFloat32, kFloat64, kInt32, kInt64, kUInt8, kBFloat16 };
enum class ReduceOp { kSum, kAvg, kMax, kMin };

size_t DataTypeSize(DataType type);
const char* DataTypeName(DataType type);
const char* ReduceOpName(ReduceOp op);

// A view of `count` elements of `type` at `data` (host or device memory, per backend).
struct BufferRef {
  void* data = nullptr;
  size_t count = 0;
  DataType type = DataType::kFloat32;
  size_t bytes() const { return count * DataTypeSize(type); }
};

// Completion of one asynchronous collective. Destroying a pending handle waits for it, so a
// buffer is never released while the transport may still write to it.
class CollectiveHandle {
 public:
  virtual ~CollectiveHandle() = default;
  // Blocks until done, failed, or the communicator's timeout. Idempotent.
  virtual Status Wait() = 0;
  // Non-blocking poll.
  virtual bool IsCompleted() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual const char* backend_name() const = 0;
  virtual std::chrono::milliseconds timeout() const = 0;
  // true once the communicator is poisoned (see the contract above).
  virtual bool failed() const = 0;
  // The rank the communicator's failure is blamed on; -1 while it works or when it cannot be told.
  virtual int blamed_rank() const = 0;

  // In place: every rank's buffer ends holding the reduction over all ranks.
  virtual std::unique_ptr<CollectiveHandle> AllReduceAsync(BufferRef buffer, ReduceOp op) = 0;
  // In place: every rank's buffer ends holding root's.
  virtual std::unique_ptr<CollectiveHandle> BroadcastAsync(BufferRef buffer, int root) = 0;
  // recv.count must be size() * send.count; rank r's send lands at offset r * send.count.
  virtual std::unique_ptr<CollectiveHandle> AllGatherAsync(BufferRef send, BufferRef recv) = 0;
  virtual std::unique_ptr<CollectiveHandle> BarrierAsync() = 0;

  Status AllReduce(BufferRef buffer, ReduceOp op) { return AllReduceAsync(buffer, op)->Wait(); }
  Status Broadcast(BufferRef buffer, int root) { return BroadcastAsync(buffer, root)->Wait(); }
  Status AllGather(BufferRef send, BufferRef recv) { return AllGatherAsync(send, recv)->Wait(); }
  Status Barrier() { return BarrierAsync()->Wait(); }

 protected:
  Communicator() = default;
};

// A handle that is complete from the start (argument errors, size-1 shortcuts).
std::unique_ptr<CollectiveHandle> MakeCompletedHandle(Status status);

// Checks arguments shared by all backends; returns INVALID_ARGUMENT naming rank and op.
Status ValidateAllGather(int rank, int size, const BufferRef& send, const BufferRef& recv);
Status ValidateRoot(int rank, int size, int root, const char* op);

}  // namespace dtrain::comm

#endif  // DTRAIN_RUNTIME_COMM_COMMUNICATOR_H_
