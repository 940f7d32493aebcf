// ThreadPool: a fixed set of worker threads that run the parallel loops of the indexes, so that a
// search never pays for starting threads.
#ifndef DTRAIN_WORKERS_EMBEDDING_STORE_INDEX_THREAD_POOL_H_
#define DTRAIN_WORKERS_EMBEDDING_STORE_INDEX_THREAD_POOL_H_

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace dtrain::embed {

// Thread-safe: any number of threads may call ParallelFor at once, including from inside a task
// (the caller always works on its own loop, so nesting cannot deadlock).
class ThreadPool {
 public:
  // `num_threads` is the parallelism of one loop, the calling thread included; it starts
  // num_threads - 1 workers. 0 means std::thread::hardware_concurrency().
  explicit ThreadPool(int num_threads = 0);
  ~ThreadPool();  // Joins the workers; no ParallelFor may be running.

  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Runs task(i) once for every i in [0, n), on the caller and the workers, and returns when all
  // have finished. Tasks are handed out in increasing order of i.
  void ParallelFor(size_t n, const std::function<void(size_t i)>& task);

 private:
  struct Loop;

  void WorkerMain();
  static void RunTasks(Loop* loop);

  std::mutex mu_;
  std::condition_variable work_ready_;
  std::deque<std::shared_ptr<Loop>> queue_;  // one entry per worker invited to a loop
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace dtrain::embed

#endif  // DTRAIN_WORKERS_EMBEDDING_STORE_INDEX_THREAD_POOL_H_
