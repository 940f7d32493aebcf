// CommHealth: whether a communicator still works, and if not, why and whose fault it is.
//
// Shared by a communicator, its handles and the liveness monitor (runtime/comm/liveness.h), so a
// failure found anywhere (a collective's deadline, a rank that stopped answering, a closed
// connection) wakes every waiter at once and later collectives fail fast instead of each waiting
// out its own timeout. The first failure wins; later ones are ignored. Thread-safe.
#ifndef DTRAIN_RUNTIME_COMM_HEALTH_H_
#define DTRAIN_RUNTIME_COMM_HEALTH_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>

#include "runtime/common/status.h"

namespace dtrain::comm {

class CommHealth {
 public:
  CommHealth() = default;
  CommHealth(const CommHealth&) = delete;
  CommHealth& operator=(const CommHealth&) = delete;

  // Marks the communicator failed with `reason`, blaming `blamed_rank` (-1: cannot be told), and
  // wakes every waiter. Returns false when it had already failed (the earlier reason stays).
  bool Poison(Status reason, int blamed_rank);

  bool poisoned() const { return poisoned_.load(std::memory_order_acquire); }
  // The first failure (OK while healthy).
  Status reason() const;
  // The rank the first failure is blamed on; -1 while healthy or when it cannot be told.
  int blamed_rank() const { return blamed_rank_.load(std::memory_order_acquire); }

  // Runs `mark` (which records an operation's completion) under the lock, then wakes waiters.
  void Complete(const std::function<void()>& mark);
  // Blocks until `done()` (evaluated under the lock) holds, the communicator is poisoned, or
  // `deadline` passes. Returns done().
  bool WaitUntil(std::chrono::steady_clock::time_point deadline, const std::function<bool()>& done);

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<bool> poisoned_{false};
  std::atomic<int> blamed_rank_{-1};
  Status reason_;  // guarded by mu_
};

}  // namespace dtrain::comm

#endif  // DTRAIN_RUNTIME_COMM_HEALTH_H_
