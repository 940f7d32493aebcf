#include "runtime/comm/health.h"

#include <utility>

namespace dtrain::comm {

bool CommHealth::Poison(Status reason, int blamed_rank) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (poisoned_.load(std::memory_order_relaxed)) return false;
    reason_ = std::move(reason);
    blamed_rank_.store(blamed_rank, std::memory_order_release);
    poisoned_.store(true, std::memory_order_release);
  }
  cv_.notify_all();
  return true;
}

Status CommHealth::reason() const {
  std::lock_guard<std::mutex> lock(mu_);
  return reason_;
}

void CommHealth::Complete(const std::function<void()>& mark) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    mark();
  }
  cv_.notify_all();
}

bool CommHealth::WaitUntil(std::chrono::steady_clock::time_point deadline,
                           const std::function<bool()>& done) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_until(lock, deadline,
                 [&] { return done() || poisoned_.load(std::memory_order_relaxed); });
  return done();
}

}  // namespace dtrain::comm
