// MPI backend of Communicator for host memory, and the RAII owner of MPI's lifetime.
//
// Every MPI call after initialisation is made by one progress thread per communicator, which
// runs collectives in issue order. That gives real asynchrony (the trainer's backward pass keeps
// computing while a bucket is reduced), a wait with a deadline, and only needs
// MPI_THREAD_SERIALIZED from the MPI library.
#ifndef DTRAIN_RUNTIME_COMM_MPI_COMMUNICATOR_H_
#define DTRAIN_RUNTIME_COMM_MPI_COMMUNICATOR_H_

#include <mpi.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "runtime/comm/communicator.h"
#include "runtime/comm/health.h"
#include "runtime/comm/liveness.h"

namespace dtrain::comm {

// Initialises MPI on construction, finalises on destruction. One per process.
class MpiEnvironment {
 public:
  // Fails when MPI cannot provide MPI_THREAD_SERIALIZED.
  static StatusOr<std::unique_ptr<MpiEnvironment>> Init(int* argc, char*** argv);
  ~MpiEnvironment();
  MpiEnvironment(const MpiEnvironment&) = delete;
  MpiEnvironment& operator=(const MpiEnvironment&) = delete;

  int world_rank() const { return world_rank_; }
  int world_size() const { return world_size_; }
  // Rank and size among the processes on this host (GPU selection, thread budgets).
  int local_rank() const { return local_rank_; }
  int local_size() const { return local_size_; }

  // Ends every rank of the job: the way out after a collective timed out.
  [[noreturn]] static void Abort(int exit_code);

 private:
  MpiEnvironment() = default;
  int world_rank_ = 0;
  int world_size_ = 1;
  int local_rank_ = 0;
  int local_size_ = 1;
};

class MpiCommunicator final : public Communicator {
 public:
  // Duplicates `comm` (collective over it) so dtrain traffic never matches anyone else's, and
  // with more than one rank starts the liveness monitor (rank 0 broadcasts its endpoint). Where
  // the monitor cannot connect, every rank runs without it (a warning on stderr) and a stall is
  // found by the collective deadlines alone.
  static StatusOr<std::unique_ptr<MpiCommunicator>> Create(MPI_Comm comm,
                                                           std::chrono::milliseconds timeout);
  ~MpiCommunicator() override;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const char* backend_name() const override { return "mpi"; }
  std::chrono::milliseconds timeout() const override { return timeout_; }
  bool failed() const override { return health_->poisoned(); }
  int blamed_rank() const override { return health_->blamed_rank(); }
  // Shared with communicators built over this one (NCCL); null with one rank or without it.
  const std::shared_ptr<LivenessMonitor>& liveness() const { return liveness_; }

  std::unique_ptr<CollectiveHandle> AllReduceAsync(BufferRef buffer, ReduceOp op) override;
  std::unique_ptr<CollectiveHandle> BroadcastAsync(BufferRef buffer, int root) override;
  std::unique_ptr<CollectiveHandle> AllGatherAsync(BufferRef send, BufferRef recv) override;
  std::unique_ptr<CollectiveHandle> BarrierAsync() override;

  struct OpState;  // shared between a handle and the progress thread

 private:
  MpiCommunicator(MPI_Comm comm, int rank, int size, std::chrono::milliseconds timeout,
                  std::shared_ptr<LivenessMonitor> liveness);
  std::unique_ptr<CollectiveHandle> Enqueue(std::string description,
                                            std::function<int(MPI_Comm)> run,
                                            std::function<void()> after = nullptr);

  MPI_Comm comm_;
  const int rank_;
  const int size_;
  const std::chrono::milliseconds timeout_;

  struct Op {
    std::function<int(MPI_Comm)> run;  // returns an MPI error code
    std::function<void()> after;       // runs on success (e.g. divide for avg)
    std::shared_ptr<OpState> state;
  };
  // State shared with the progress thread. Shared ownership lets a communicator whose thread is
  // stuck inside MPI (after a timeout) be destroyed without the thread touching freed memory.
  struct Queue {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<Op> ops;
    bool stopping = false;
    bool exited = false;
    uint64_t next_seq = 0;
    std::atomic<int64_t> queued{0};  // ops.size(), readable without the lock
  };
  std::shared_ptr<Queue> queue_;
  static void ProgressLoop(MPI_Comm comm, std::shared_ptr<Queue> queue,
                           std::shared_ptr<CommHealth> health,
                           std::shared_ptr<LivenessMonitor> liveness);
  std::shared_ptr<CommHealth> health_;
  std::shared_ptr<LivenessMonitor> liveness_;
  std::thread progress_thread_;
};

}  // namespace dtrain::comm

#endif  // DTRAIN_RUNTIME_COMM_MPI_COMMUNICATOR_H_
