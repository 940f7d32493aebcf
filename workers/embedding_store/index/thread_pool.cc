#include "workers/embedding_store/index/thread_pool.h"

#include <algorithm>
#include <atomic>

namespace dtrain::embed {

struct ThreadPool::Loop {
  Loop(size_t n, const std::function<void(size_t)>* task) : n(n), task(task) {}

  const size_t n;
  // Points at the caller's function, which outlives every task: the caller waits for `done`.
  const std::function<void(size_t)>* const task;
  std::atomic<size_t> next{0};
  std::atomic<size_t> done{0};
  std::mutex mu;
  std::condition_variable finished;
};

ThreadPool::ThreadPool(int num_threads) {
  if (num_threads <= 0) num_threads = static_cast<int>(std::thread::hardware_concurrency());
  num_threads = std::max(num_threads, 1);
  workers_.reserve(num_threads - 1);
  for (int i = 1; i < num_threads; ++i) workers_.emplace_back([this] { WorkerMain(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  work_ready_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void ThreadPool::RunTasks(Loop* loop) {
  for (;;) {
    const size_t i = loop->next.fetch_add(1, std::memory_order_relaxed);
    if (i >= loop->n) return;
    (*loop->task)(i);
    if (loop->done.fetch_add(1, std::memory_order_acq_rel) + 1 == loop->n) {
      // Lock so that the notification cannot slip between the waiter's check and its sleep.
      std::lock_guard<std::mutex> lock(loop->mu);
      loop->finished.notify_all();
    }
  }
}

void ThreadPool::WorkerMain() {
  for (;;) {
    std::shared_ptr<Loop> loop;
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping
      loop = std::move(queue_.front());
      queue_.pop_front();
    }
    RunTasks(loop.get());
  }
}

void ThreadPool::ParallelFor(size_t n, const std::function<void(size_t i)>& task) {
  if (n == 0) return;
  const size_t helpers = std::min(n - 1, workers_.size());
  if (helpers == 0) {
    for (size_t i = 0; i < n; ++i) task(i);
    return;
  }
  auto loop = std::make_shared<Loop>(n, &task);
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = 0; i < helpers; ++i) queue_.push_back(loop);
  }
  if (helpers == workers_.size()) {
    work_ready_.notify_all();
  } else {
    for (size_t i = 0; i < helpers; ++i) work_ready_.notify_one();
  }
  RunTasks(loop.get());
  std::unique_lock<std::mutex> lock(loop->mu);
  loop->finished.wait(lock, [&] { return loop->done.load(std::memory_order_acquire) == n; });
}

}  // namespace dtrain::embed
