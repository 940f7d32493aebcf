// NCCL backend of Communicator for CUDA device memory. Built only with DTRAIN_HAVE_NCCL.
//
// Works on raw device pointers and CUDA streams, so it needs the CUDA runtime and NCCL but not a
// CUDA-enabled LibTorch. Collectives run on the communicator's own stream, ordered after the work
// already queued on the "compute" stream (the stream the caller produced the data on; by default
// CUDA's legacy default stream, which is LibTorch's default). When a handle's Wait() returns, the
// compute stream is made to wait for the collective, so kernels queued afterwards see the result.
#ifndef DTRAIN_RUNTIME_COMM_NCCL_COMMUNICATOR_H_
#define DTRAIN_RUNTIME_COMM_NCCL_COMMUNICATOR_H_

#include <atomic>
#include <chrono>
#include <memory>

#include "runtime/comm/communicator.h"
#include "runtime/comm/health.h"
#include "runtime/comm/liveness.h"

namespace dtrain::comm {

// Number of visible CUDA devices; 0 when there is no driver or no device.
int CudaDeviceCount();

class NcclCommunicator final : public Communicator {
 public:
  // Collective over `bootstrap` (any backend; MPI in practice): rank 0 creates the NCCL unique
  // id and broadcasts it. `device` is the CUDA device this rank uses (usually its local rank).
  // `liveness` is the bootstrap's monitor (MpiCommunicator::liveness()), shared so that a rank
  // that stops answering fails this communicator's waits too and is named; null: none.
  static StatusOr<std::unique_ptr<NcclCommunicator>> Create(
      Communicator& bootstrap, int device, std::chrono::milliseconds timeout,
      std::shared_ptr<LivenessMonitor> liveness = nullptr);
  ~NcclCommunicator() override;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const char* backend_name() const override { return "nccl"; }
  std::chrono::milliseconds timeout() const override { return timeout_; }
  bool failed() const override;
  int blamed_rank() const override;
  int device() const { return device_; }

  // cudaStream_t of the caller's compute work; nullptr = legacy default stream.
  void set_compute_stream(void* stream) { compute_stream_ = stream; }

  std::unique_ptr<CollectiveHandle> AllReduceAsync(BufferRef buffer, ReduceOp op) override;
  std::unique_ptr<CollectiveHandle> BroadcastAsync(BufferRef buffer, int root) override;
  std::unique_ptr<CollectiveHandle> AllGatherAsync(BufferRef send, BufferRef recv) override;
  std::unique_ptr<CollectiveHandle> BarrierAsync() override;

  struct Impl;  // CUDA/NCCL handles; kept out of this header

 private:
  NcclCommunicator(std::unique_ptr<Impl> impl, int rank, int size, int device,
                   std::chrono::milliseconds timeout, std::shared_ptr<LivenessMonitor> liveness);
  template <typename Launch>
  std::unique_ptr<CollectiveHandle> Launch(const std::string& description, Launch launch);

  std::unique_ptr<Impl> impl_;
  const int rank_;
  const int size_;
  const int device_;
  const std::chrono::milliseconds timeout_;
  std::shared_ptr<LivenessMonitor> liveness_;
  void* compute_stream_ = nullptr;
  uint64_t next_seq_ = 0;  // without a liveness monitor (which then counts)
};

}  // namespace dtrain::comm

#endif  // DTRAIN_RUNTIME_COMM_NCCL_COMMUNICATOR_H_
