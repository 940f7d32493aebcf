#include "runtime/comm/mpi_communicator.h"

#include <algorithm>
#include <array>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <type_traits>
#include <utility>

#include "runtime/comm/bfloat16.h"

namespace dtrain::comm {
namespace {

// How long a waiting thread polls before it blocks on a condition variable.
constexpr std::chrono::microseconds kSpinBeforeBlocking(100);
// How long a poisoned communicator's destructor waits for its progress thread, which may be
// stuck inside MPI for good.
constexpr std::chrono::milliseconds kPoisonedShutdownGrace(200);

std::string MpiErrorString(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS)
    return "MPI error " + std::to_string(code);
  return std::string(text, static_cast<size_t>(length));
}

MPI_Datatype ToMpi(DataType type) {
  switch (type) {
    case DataType::kFloat32:
      return MPI_FLOAT;
    case DataType::kFloat64:
      return MPI_DOUBLE;
    case DataType::kInt32:
      return MPI_INT32_T;
    case DataType::kInt64:
      return MPI_INT64_T;
    case DataType::kUInt8:
      return MPI_UINT8_T;
    case DataType::kBFloat16:
      return MPI_UINT16_T;  // moved as bits; reductions go through BFloat16Op
  }
  return MPI_DATATYPE_NULL;
}

// MPI has no bfloat16: reductions on it are user operations that widen each pair to float32,
// combine, and round back (bfloat16.h).
template <typename Combine>
void BFloat16Reduce(void* in, void* inout, int* len, MPI_Datatype*) {
  const uint16_t* a = static_cast<const uint16_t*>(in);
  uint16_t* b = static_cast<uint16_t*>(inout);
  for (int i = 0; i < *len; ++i) {
    b[i] = FloatToBFloat16(Combine()(BFloat16ToFloat(a[i]), BFloat16ToFloat(b[i])));
  }
}
struct AddFloats {
  float operator()(float a, float b) const { return a + b; }
};
struct MaxFloats {
  float operator()(float a, float b) const { return std::max(a, b); }
};
struct MinFloats {
  float operator()(float a, float b) const { return std::min(a, b); }
};

// Created on first use (MPI is initialised by then) and kept for the process's life.
MPI_Op BFloat16Op(ReduceOp op) {
  static MPI_Op sum = MPI_OP_NULL, max = MPI_OP_NULL, min = MPI_OP_NULL;
  static std::once_flag once;
  std::call_once(once, [] {
    MPI_Op_create(&BFloat16Reduce<AddFloats>, /*commute=*/1, &sum);
    MPI_Op_create(&BFloat16Reduce<MaxFloats>, /*commute=*/1, &max);
    MPI_Op_create(&BFloat16Reduce<MinFloats>, /*commute=*/1, &min);
  });
  switch (op) {
    case ReduceOp::kSum:
    case ReduceOp::kAvg:
      return sum;
    case ReduceOp::kMax:
      return max;
    case ReduceOp::kMin:
      return min;
  }
  return MPI_OP_NULL;
}

MPI_Op ToMpi(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
    case ReduceOp::kAvg:
      return MPI_SUM;  // avg divides afterwards
    case ReduceOp::kMax:
      return MPI_MAX;
    case ReduceOp::kMin:
      return MPI_MIN;
  }
  return MPI_OP_NULL;
}

template <typename T>
void DivideInPlace(void* data, size_t count, int divisor) {
  T* values = static_cast<T*>(data);
  if constexpr (std::is_floating_point_v<T>) {
    const T scale = T(1) / static_cast<T>(divisor);  // a multiply vectorises; a divide is slow
    for (size_t i = 0; i < count; ++i) values[i] *= scale;
  } else {
    const T d = static_cast<T>(divisor);
    for (size_t i = 0; i < count; ++i) values[i] /= d;
  }
}

void Divide(BufferRef buffer, int divisor) {
  switch (buffer.type) {
    case DataType::kFloat32:
      DivideInPlace<float>(buffer.data, buffer.count, divisor);
      break;
    case DataType::kFloat64:
      DivideInPlace<double>(buffer.data, buffer.count, divisor);
      break;
    case DataType::kInt32:
      DivideInPlace<int32_t>(buffer.data, buffer.count, divisor);
      break;
    case DataType::kInt64:
      DivideInPlace<int64_t>(buffer.data, buffer.count, divisor);
      break;
    case DataType::kUInt8:
      DivideInPlace<uint8_t>(buffer.data, buffer.count, divisor);
      break;
    case DataType::kBFloat16: {
      uint16_t* values = static_cast<uint16_t*>(buffer.data);
      const float scale = 1.0f / static_cast<float>(divisor);
      for (size_t i = 0; i < buffer.count; ++i) {
        values[i] = FloatToBFloat16(BFloat16ToFloat(values[i]) * scale);
      }
      break;
    }
  }
}

// MPI counts are int: split larger buffers into chunks issued back to back.
template <typename Fn>
int ForEachChunk(BufferRef buffer, Fn fn) {
  const size_t element = DataTypeSize(buffer.type);
  size_t offset = 0;
  do {
    const size_t n = std::min(buffer.count - offset, static_cast<size_t>(INT_MAX));
    int rc = fn(static_cast<char*>(buffer.data) + offset * element, static_cast<int>(n));
    if (rc != MPI_SUCCESS) return rc;
    offset += n;
  } while (offset < buffer.count);
  return MPI_SUCCESS;
}

std::string Describe(const char* op, const BufferRef& b) {
  return std::string(op) + " of " + std::to_string(b.count) + " " + DataTypeName(b.type) + " (" +
         std::to_string(b.bytes()) + " bytes)";
}

}  // namespace

// ----------------------------------------------------------------------------- MpiEnvironment

StatusOr<std::unique_ptr<MpiEnvironment>> MpiEnvironment::Init(int* argc, char*** argv) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  int provided = MPI_THREAD_SINGLE;
  if (!initialized) {
    int rc = MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided);
    if (rc != MPI_SUCCESS) return Unavailable("MPI_Init_thread failed: " + MpiErrorString(rc));
  } else {
    MPI_Query_thread(&provided);
  }
  if (provided < MPI_THREAD_SERIALIZED) {
    return FailedPrecondition("the MPI library provides thread level " + std::to_string(provided) +
                              ", dtrain needs MPI_THREAD_SERIALIZED (" +
                              std::to_string(MPI_THREAD_SERIALIZED) + ")");
  }
  std::unique_ptr<MpiEnvironment> env(new MpiEnvironment());
  MPI_Comm_rank(MPI_COMM_WORLD, &env->world_rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &env->world_size_);
  MPI_Comm local;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, env->world_rank_, MPI_INFO_NULL,
                      &local);
  MPI_Comm_rank(local, &env->local_rank_);
  MPI_Comm_size(local, &env->local_size_);
  MPI_Comm_free(&local);
  return env;
}

MpiEnvironment::~MpiEnvironment() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

void MpiEnvironment::Abort(int exit_code) {
  MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::_Exit(exit_code);  // MPI_Abort does not return; this is for the compiler.
}

// ----------------------------------------------------------------------------- handles

struct MpiCommunicator::OpState {
  bool done = false;                  // guarded by the communicator's CommHealth
  std::atomic<bool> finished{false};  // mirrors `done` for the lock-free spin in Wait()
  Status status;
  uint64_t seq = 0;         // issue order (shared with the liveness monitor's count)
  std::string description;  // "rank 1: collective #12 (allreduce of 1024 float32 (4096 bytes))"
};

namespace {

std::string FormatSeconds(std::chrono::milliseconds d) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f", d.count() / 1000.0);
  return text;
}

class MpiHandle final : public CollectiveHandle {
 public:
  MpiHandle(std::shared_ptr<MpiCommunicator::OpState> state, std::shared_ptr<CommHealth> health,
            std::shared_ptr<LivenessMonitor> liveness, std::chrono::milliseconds timeout)
      : state_(std::move(state)),
        health_(std::move(health)),
        liveness_(std::move(liveness)),
        timeout_(timeout) {}
  // Waits only while the communicator works: once it is poisoned the process is about to end,
  // and a buffer the stuck transport may still write to is then left alone, not freed.
  ~MpiHandle() override { (void)Wait(); }

  Status Wait() override {
    // A short spin first: most collectives of a training step finish within microseconds of
    // the wait, and waking from a condition variable costs tens of them.
    const auto spin_until = std::chrono::steady_clock::now() + kSpinBeforeBlocking;
    while (!state_->finished.load(std::memory_order_acquire) && !health_->poisoned() &&
           std::chrono::steady_clock::now() < spin_until) {
      std::this_thread::yield();
    }
    if (health_->WaitUntil(std::chrono::steady_clock::now() + timeout_,
                           [&] { return state_->done; })) {
      return state_->status;
    }
    if (!health_->poisoned()) {
      std::string why = "a peer rank may have died, stalled, or issued a different collective";
      const int blamed = liveness_ ? liveness_->BlameForDeadline(state_->seq, &why) : -1;
      health_->Poison(
          DeadlineExceeded(state_->description + " did not complete within " +
                           FormatSeconds(timeout_) + " s: " + why + " (see distributed.timeout_s)"),
          blamed);
    }
    const Status reason = health_->reason();
    // This collective's own deadline: the reason as is; another failure: say which one waited.
    if (reason.message().rfind(state_->description, 0) == 0) return reason;
    return reason.WithContext(state_->description + " abandoned");
  }

  bool IsCompleted() override { return state_->finished.load(std::memory_order_acquire); }

 private:
  std::shared_ptr<MpiCommunicator::OpState> state_;
  std::shared_ptr<CommHealth> health_;
  std::shared_ptr<LivenessMonitor> liveness_;
  std::chrono::milliseconds timeout_;
};

// Rank 0 starts the hub and broadcasts how to reach it; the others connect. Every rank learns
// whether all connected, so either all run with the monitor or none does.
std::shared_ptr<LivenessMonitor> StartLiveness(MPI_Comm comm, int rank, int size,
                                               std::chrono::milliseconds timeout) {
  std::unique_ptr<LivenessMonitor> monitor;
  Status status;
  std::array<char, LivenessEndpoint::kEncodedBytes> encoded{};
  if (rank == 0) {
    LivenessEndpoint endpoint;
    auto hub = LivenessMonitor::StartHub(size, timeout, &endpoint);
    if (hub.ok()) {
      monitor = std::move(hub).value();
      encoded = endpoint.Encode();
    } else {
      status = hub.status();  // an all-zero endpoint tells the others
    }
  }
  MPI_Bcast(encoded.data(), static_cast<int>(encoded.size()), MPI_CHAR, 0, comm);
  if (rank != 0) {
    auto endpoint = LivenessEndpoint::Decode(encoded);
    if (!endpoint.ok()) {
      status = endpoint.status();
    } else {
      auto spoke = LivenessMonitor::StartSpoke(*endpoint, rank, size, timeout);
      if (spoke.ok()) {
        monitor = std::move(spoke).value();
      } else {
        status = spoke.status();
      }
    }
  }
  int failed = status.ok() ? 0 : 1;
  int any_failed = 0;
  MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, comm);
  if (!status.ok()) {
    std::fprintf(stderr,
                 "rank %d: warning: %s; running without the liveness monitor: a stalled rank is "
                 "found only by collective deadlines and cannot be named\n",
                 rank, status.ToString().c_str());
  }
  if (any_failed) return nullptr;
  return std::shared_ptr<LivenessMonitor>(std::move(monitor));
}

}  // namespace

// ----------------------------------------------------------------------------- communicator

StatusOr<std::unique_ptr<MpiCommunicator>> MpiCommunicator::Create(
    MPI_Comm comm, std::chrono::milliseconds timeout) {
  MPI_Comm dup;
  int rc = MPI_Comm_dup(comm, &dup);
  if (rc != MPI_SUCCESS) return Unavailable("MPI_Comm_dup failed: " + MpiErrorString(rc));
  MPI_Comm_set_errhandler(dup, MPI_ERRORS_RETURN);
  int rank = 0, size = 1;
  MPI_Comm_rank(dup, &rank);
  MPI_Comm_size(dup, &size);
  std::shared_ptr<LivenessMonitor> liveness =
      size > 1 ? StartLiveness(dup, rank, size, timeout) : nullptr;
  return std::unique_ptr<MpiCommunicator>(
      new MpiCommunicator(dup, rank, size, timeout, std::move(liveness)));
}

MpiCommunicator::MpiCommunicator(MPI_Comm comm, int rank, int size,
                                 std::chrono::milliseconds timeout,
                                 std::shared_ptr<LivenessMonitor> liveness)
    : comm_(comm),
      rank_(rank),
      size_(size),
      timeout_(timeout),
      queue_(std::make_shared<Queue>()),
      health_(std::make_shared<CommHealth>()),
      liveness_(std::move(liveness)) {
  if (liveness_) liveness_->Attach(health_);
  progress_thread_ = std::thread(ProgressLoop, comm_, queue_, health_, liveness_);
}

MpiCommunicator::~MpiCommunicator() {
  bool exited = false;
  {
    std::unique_lock<std::mutex> lock(queue_->mu);
    queue_->stopping = true;
    queue_->cv.notify_all();
    // Once poisoned the thread may be stuck inside MPI for good: a short grace, not a timeout.
    exited = queue_->cv.wait_for(
        lock, health_->poisoned() ? kPoisonedShutdownGrace : std::chrono::hours(24 * 365),
        [&] { return queue_->exited; });
  }
  if (!exited) {
    progress_thread_.detach();  // it only holds shared state; the process is about to abort
    return;
  }
  progress_thread_.join();
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized && !health_->poisoned()) MPI_Comm_free(&comm_);
}

void MpiCommunicator::ProgressLoop(MPI_Comm comm, std::shared_ptr<Queue> queue,
                                   std::shared_ptr<CommHealth> health,
                                   std::shared_ptr<LivenessMonitor> liveness) {
  for (;;) {
    Op op;
    // Spin briefly for the next collective (buckets arrive in bursts) before sleeping.
    const auto spin_until = std::chrono::steady_clock::now() + kSpinBeforeBlocking;
    while (queue->queued.load(std::memory_order_acquire) == 0 &&
           std::chrono::steady_clock::now() < spin_until) {
      std::this_thread::yield();
    }
    {
      std::unique_lock<std::mutex> lock(queue->mu);
      queue->cv.wait(lock, [&] { return queue->stopping || !queue->ops.empty(); });
      if (queue->ops.empty()) {  // stopping and drained
        queue->exited = true;
        queue->cv.notify_all();
        return;
      }
      op = std::move(queue->ops.front());
      queue->ops.pop_front();
      queue->queued.fetch_sub(1, std::memory_order_relaxed);
    }
    Status status;
    if (health->poisoned()) {
      status = Aborted(op.state->description + " not started: " + health->reason().message());
    } else {
      int rc = op.run(comm);
      if (rc != MPI_SUCCESS) {
        status = Unavailable(op.state->description + " failed: " + MpiErrorString(rc));
      } else if (op.after) {
        op.after();
      }
    }
    if (liveness) liveness->NoteCompleted();
    health->Complete([&] {
      op.state->status = std::move(status);
      op.state->done = true;
      op.state->finished.store(true, std::memory_order_release);
    });
  }
}

std::unique_ptr<CollectiveHandle> MpiCommunicator::Enqueue(std::string description,
                                                           std::function<int(MPI_Comm)> run,
                                                           std::function<void()> after) {
  auto state = std::make_shared<OpState>();
  {
    std::lock_guard<std::mutex> lock(queue_->mu);
    state->seq = liveness_ ? liveness_->NoteIssued() : queue_->next_seq++;
    state->description = "rank " + std::to_string(rank_) + ": collective #" +
                         std::to_string(state->seq) + " (" + description + ")";
    if (health_->poisoned()) {
      return MakeCompletedHandle(
          Aborted(state->description + " refused: " + health_->reason().message()));
    }
    queue_->ops.push_back(Op{std::move(run), std::move(after), state});
    queue_->queued.fetch_add(1, std::memory_order_release);
  }
  queue_->cv.notify_all();
  return std::make_unique<MpiHandle>(std::move(state), health_, liveness_, timeout_);
}

std::unique_ptr<CollectiveHandle> MpiCommunicator::AllReduceAsync(BufferRef buffer, ReduceOp op) {
  std::string what = Describe("allreduce", buffer) + ", " + ReduceOpName(op);
  std::function<void()> after;
  if (op == ReduceOp::kAvg) after = [buffer, n = size_] { Divide(buffer, n); };
  return Enqueue(
      std::move(what),
      [buffer, op](MPI_Comm comm) {
        return ForEachChunk(buffer, [&](void* data, int n) {
          const MPI_Op mpi_op = buffer.type == DataType::kBFloat16 ? BFloat16Op(op) : ToMpi(op);
          return MPI_Allreduce(MPI_IN_PLACE, data, n, ToMpi(buffer.type), mpi_op, comm);
        });
      },
      std::move(after));
}

std::unique_ptr<CollectiveHandle> MpiCommunicator::BroadcastAsync(BufferRef buffer, int root) {
  Status valid = ValidateRoot(rank_, size_, root, "broadcast");
  if (!valid.ok()) return MakeCompletedHandle(valid);
  return Enqueue(Describe("broadcast", buffer) + " from rank " + std::to_string(root),
                 [buffer, root](MPI_Comm comm) {
                   return ForEachChunk(buffer, [&](void* data, int n) {
                     return MPI_Bcast(data, n, ToMpi(buffer.type), root, comm);
                   });
                 });
}

std::unique_ptr<CollectiveHandle> MpiCommunicator::AllGatherAsync(BufferRef send, BufferRef recv) {
  Status valid = ValidateAllGather(rank_, size_, send, recv);
  if (valid.ok() && recv.count > static_cast<size_t>(INT_MAX)) {
    valid = InvalidArgument("rank " + std::to_string(rank_) + ": allgather of " +
                            std::to_string(recv.count) + " elements exceeds MPI's int count");
  }
  if (!valid.ok()) return MakeCompletedHandle(valid);
  return Enqueue(Describe("allgather", send), [send, recv](MPI_Comm comm) {
    return MPI_Allgather(send.data, static_cast<int>(send.count), ToMpi(send.type), recv.data,
                         static_cast<int>(send.count), ToMpi(recv.type), comm);
  });
}

std::unique_ptr<CollectiveHandle> MpiCommunicator::BarrierAsync() {
  return Enqueue("barrier", [](MPI_Comm comm) { return MPI_Barrier(comm); });
}

}  // namespace dtrain::comm
