#include "runtime/comm/nccl_communicator.h"

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <cstring>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace dtrain::comm {
namespace {

std::string CudaError(cudaError_t e) {
  return std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e);
}

std::string NcclError(ncclResult_t r) { return std::string(ncclGetErrorString(r)); }

ncclDataType_t ToNccl(DataType type) {
  switch (type) {
    case DataType::kFloat32:
      return ncclFloat32;
    case DataType::kFloat64:
      return ncclFloat64;
    case DataType::kInt32:
      return ncclInt32;
    case DataType::kInt64:
      return ncclInt64;
    case DataType::kUInt8:
      return ncclUint8;
    case DataType::kBFloat16:
      return ncclBfloat16;
  }
  return ncclFloat32;
}

ncclRedOp_t ToNccl(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return ncclSum;
    case ReduceOp::kAvg:
      return ncclAvg;
    case ReduceOp::kMax:
      return ncclMax;
    case ReduceOp::kMin:
      return ncclMin;
  }
  return ncclSum;
}

}  // namespace

int CudaDeviceCount() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return count;
}

struct NcclCommunicator::Impl {
  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;
  int* barrier_word = nullptr;  // device scratch for Barrier
  std::shared_ptr<CommHealth> health = std::make_shared<CommHealth>();

  ~Impl() {
    if (comm != nullptr) {
      if (health->poisoned()) {
        ncclCommAbort(comm);  // outstanding work may never finish
      } else {
        ncclCommDestroy(comm);
      }
    }
    if (barrier_word != nullptr) cudaFree(barrier_word);
    if (stream != nullptr) cudaStreamDestroy(stream);
  }
};

namespace {

// Completion = a CUDA event recorded after the NCCL call on the communicator's stream.
class NcclHandle final : public CollectiveHandle {
 public:
  NcclHandle(std::string description, uint64_t seq, cudaEvent_t done, ncclComm_t comm,
             cudaStream_t compute_stream, std::shared_ptr<CommHealth> health,
             std::shared_ptr<LivenessMonitor> liveness, std::chrono::milliseconds timeout)
      : description_(std::move(description)),
        seq_(seq),
        done_(done),
        comm_(comm),
        compute_stream_(compute_stream),
        health_(std::move(health)),
        liveness_(std::move(liveness)),
        timeout_(timeout) {}

  ~NcclHandle() override {
    (void)Wait();
    cudaEventDestroy(done_);
  }

  Status Wait() override {
    if (finished_) return status_;
    const auto deadline = std::chrono::steady_clock::now() + timeout_;
    for (;;) {
      cudaError_t e = cudaEventQuery(done_);
      if (e == cudaSuccess) {
        // Later kernels on the compute stream must see the reduced data.
        e = cudaStreamWaitEvent(compute_stream_, done_, 0);
        status_ = e == cudaSuccess
                      ? Status::Ok()
                      : Internal(description_ + ": cudaStreamWaitEvent: " + CudaError(e));
        if (liveness_) liveness_->NoteCompleted();
        break;
      }
      if (e != cudaErrorNotReady) {
        status_ = Internal(description_ + " failed: " + CudaError(e));
        break;
      }
      if (health_->poisoned()) {  // found elsewhere: a peer stopped answering, a deadline
        status_ = health_->reason().WithContext(description_ + " abandoned");
        break;
      }
      ncclResult_t async_error = ncclSuccess;
      ncclCommGetAsyncError(comm_, &async_error);
      if (async_error != ncclSuccess && async_error != ncclInProgress) {
        status_ = Fail(Unavailable(description_ + " failed: " + NcclError(async_error)));
        break;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        status_ = Fail(DeadlineExceeded(description_ + " did not complete within " +
                                        std::to_string(timeout_.count() / 1000.0) + " s"));
        break;
      }
      std::this_thread::yield();
    }
    finished_ = true;
    return status_;
  }

  bool IsCompleted() override { return finished_ || cudaEventQuery(done_) != cudaErrorNotReady; }

 private:
  // Poisons the communicator, blaming the rank the liveness table points at.
  Status Fail(Status error) {
    std::string why = "a peer rank may have died, stalled, or issued a different collective";
    const int blamed = liveness_ ? liveness_->BlameForDeadline(seq_, &why) : -1;
    Status status(error.code(), error.message() + ": " + why + " (see distributed.timeout_s)");
    health_->Poison(status, blamed);
    return status;
  }

  std::string description_;
  uint64_t seq_;
  cudaEvent_t done_;
  ncclComm_t comm_;
  cudaStream_t compute_stream_;
  std::shared_ptr<CommHealth> health_;
  std::shared_ptr<LivenessMonitor> liveness_;
  std::chrono::milliseconds timeout_;
  bool finished_ = false;
  Status status_;
};

}  // namespace

StatusOr<std::unique_ptr<NcclCommunicator>> NcclCommunicator::Create(
    Communicator& bootstrap, int device, std::chrono::milliseconds timeout,
    std::shared_ptr<LivenessMonitor> liveness) {
  const int rank = bootstrap.rank();
  const int size = bootstrap.size();
  const std::string who = "rank " + std::to_string(rank) + ": ";
  const int devices = CudaDeviceCount();
  // Every rank takes part in the id broadcast even when it will fail, so no peer hangs in it.
  Status local = Status::Ok();
  if (device < 0 || device >= devices) {
    local = FailedPrecondition(who + "CUDA device " + std::to_string(device) + " requested but " +
                               std::to_string(devices) + " device(s) are visible");
  }
  ncclUniqueId id;
  std::memset(&id, 0, sizeof(id));
  if (rank == 0 && local.ok()) {
    ncclResult_t r = ncclGetUniqueId(&id);
    if (r != ncclSuccess) local = Unavailable(who + "ncclGetUniqueId: " + NcclError(r));
  }
  // Agree on failure first: 0 = everyone ok.
  int32_t failed = local.ok() ? 0 : 1;
  DTRAIN_RETURN_IF_ERROR(bootstrap.AllReduce({&failed, 1, DataType::kInt32}, ReduceOp::kMax));
  if (!local.ok()) return local;
  if (failed) return Aborted(who + "another rank failed to set up NCCL");
  DTRAIN_RETURN_IF_ERROR(bootstrap.Broadcast({&id, sizeof(id), DataType::kUInt8}, 0));

  auto impl = std::make_unique<Impl>();
  cudaError_t e = cudaSetDevice(device);
  if (e != cudaSuccess)
    return Internal(who + "cudaSetDevice(" + std::to_string(device) + "): " + CudaError(e));
  e = cudaStreamCreateWithFlags(&impl->stream, cudaStreamNonBlocking);
  if (e != cudaSuccess) return Internal(who + "cudaStreamCreate: " + CudaError(e));
  e = cudaMalloc(reinterpret_cast<void**>(&impl->barrier_word), sizeof(int));
  if (e != cudaSuccess) return Internal(who + "cudaMalloc: " + CudaError(e));
  ncclResult_t r = ncclCommInitRank(&impl->comm, size, id, rank);
  if (r != ncclSuccess) {
    impl->comm = nullptr;
    return Unavailable(who + "ncclCommInitRank(size " + std::to_string(size) +
                       "): " + NcclError(r));
  }
  return std::unique_ptr<NcclCommunicator>(
      new NcclCommunicator(std::move(impl), rank, size, device, timeout, std::move(liveness)));
}

NcclCommunicator::NcclCommunicator(std::unique_ptr<Impl> impl, int rank, int size, int device,
                                   std::chrono::milliseconds timeout,
                                   std::shared_ptr<LivenessMonitor> liveness)
    : impl_(std::move(impl)),
      rank_(rank),
      size_(size),
      device_(device),
      timeout_(timeout),
      liveness_(std::move(liveness)) {
  if (liveness_) liveness_->Attach(impl_->health);
}

bool NcclCommunicator::failed() const { return impl_->health->poisoned(); }
int NcclCommunicator::blamed_rank() const { return impl_->health->blamed_rank(); }

NcclCommunicator::~NcclCommunicator() = default;

template <typename LaunchFn>
std::unique_ptr<CollectiveHandle> NcclCommunicator::Launch(const std::string& description,
                                                           LaunchFn launch) {
  const uint64_t seq = liveness_ ? liveness_->NoteIssued() : next_seq_++;
  const std::string what = "rank " + std::to_string(rank_) + ": collective #" +
                           std::to_string(seq) + " (" + description + ")";
  if (impl_->health->poisoned()) {
    return MakeCompletedHandle(Aborted(what + " refused: " + impl_->health->reason().message()));
  }
  auto compute = static_cast<cudaStream_t>(compute_stream_);
  cudaEvent_t ready = nullptr;
  cudaEvent_t done = nullptr;
  cudaError_t e = cudaEventCreateWithFlags(&ready, cudaEventDisableTiming);
  if (e == cudaSuccess) e = cudaEventCreateWithFlags(&done, cudaEventDisableTiming);
  // The collective starts only after the producer kernels on the compute stream.
  if (e == cudaSuccess) e = cudaEventRecord(ready, compute);
  if (e == cudaSuccess) e = cudaStreamWaitEvent(impl_->stream, ready, 0);
  if (ready != nullptr) cudaEventDestroy(ready);
  if (e != cudaSuccess) {
    if (done != nullptr) cudaEventDestroy(done);
    return MakeCompletedHandle(Internal(what + ": " + CudaError(e)));
  }
  ncclResult_t r = launch(impl_->comm, impl_->stream);
  if (r != ncclSuccess) {
    cudaEventDestroy(done);
    Status failed = Unavailable(what + " failed: " + NcclError(r));
    impl_->health->Poison(failed, -1);
    return MakeCompletedHandle(failed);
  }
  e = cudaEventRecord(done, impl_->stream);
  if (e != cudaSuccess) {
    cudaEventDestroy(done);
    return MakeCompletedHandle(Internal(what + ": cudaEventRecord: " + CudaError(e)));
  }
  return std::make_unique<NcclHandle>(what, seq, done, impl_->comm, compute, impl_->health,
                                      liveness_, timeout_);
}

std::unique_ptr<CollectiveHandle> NcclCommunicator::AllReduceAsync(BufferRef buffer, ReduceOp op) {
  return Launch("allreduce of " + std::to_string(buffer.count) + " " + DataTypeName(buffer.type) +
                    ", " + ReduceOpName(op),
                [&](ncclComm_t comm, cudaStream_t stream) {
                  return ncclAllReduce(buffer.data, buffer.data, buffer.count, ToNccl(buffer.type),
                                       ToNccl(op), comm, stream);
                });
}

std::unique_ptr<CollectiveHandle> NcclCommunicator::BroadcastAsync(BufferRef buffer, int root) {
  Status valid = ValidateRoot(rank_, size_, root, "broadcast");
  if (!valid.ok()) return MakeCompletedHandle(valid);
  return Launch("broadcast of " + std::to_string(buffer.count) + " " + DataTypeName(buffer.type),
                [&](ncclComm_t comm, cudaStream_t stream) {
                  return ncclBroadcast(buffer.data, buffer.data, buffer.count, ToNccl(buffer.type),
                                       root, comm, stream);
                });
}

std::unique_ptr<CollectiveHandle> NcclCommunicator::AllGatherAsync(BufferRef send, BufferRef recv) {
  Status valid = ValidateAllGather(rank_, size_, send, recv);
  if (!valid.ok()) return MakeCompletedHandle(valid);
  return Launch("allgather of " + std::to_string(send.count) + " " + DataTypeName(send.type),
                [&](ncclComm_t comm, cudaStream_t stream) {
                  return ncclAllGather(send.data, recv.data, send.count, ToNccl(send.type), comm,
                                       stream);
                });
}

std::unique_ptr<CollectiveHandle> NcclCommunicator::BarrierAsync() {
  int* word = impl_->barrier_word;
  return Launch("barrier", [word](ncclComm_t comm, cudaStream_t stream) {
    return ncclAllReduce(word, word, 1, ncclInt32, ncclSum, comm, stream);
  });
}

}  // namespace dtrain::comm
