#include "workers/embedding_store/service/compactor.h"

#include <cstdio>
#include <utility>

namespace dtrain::embed {
namespace {

int64_t WallMs(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

}  // namespace

Compactor::Compactor(FaceDb* db, std::chrono::milliseconds delay, std::function<void()> after_each)
    : db_(db), delay_(delay), after_each_(std::move(after_each)), thread_([this] { Loop(); }) {}

Compactor::~Compactor() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Compactor::RunLocked(std::unique_lock<std::mutex>& lock) {
  running_ = true;
  const uint64_t covers = requested_;
  due_ms_ = 0;  // this run covers every scheduled request so far
  lock.unlock();
  Status status = db_->Checkpoint();
  if (!status.ok()) {
    std::fprintf(stderr, "dtrain-embed-store: compaction failed: %s\n", status.ToString().c_str());
  }
  if (after_each_) after_each_();
  lock.lock();
  running_ = false;
  completed_ = covers;
  last_status_ = std::move(status);
  cv_.notify_all();
}

Status Compactor::CompactNow() {
  std::unique_lock<std::mutex> lock(mu_);
  const uint64_t mine = ++requested_;
  while (completed_ < mine) {
    if (!running_) {
      RunLocked(lock);
    } else {
      cv_.wait(lock);
    }
  }
  return last_status_;
}

int64_t Compactor::Schedule() {
  std::lock_guard<std::mutex> lock(mu_);
  ++requested_;
  if (due_ms_ == 0) {
    due_ = std::chrono::steady_clock::now() + delay_;
    due_ms_ = WallMs(std::chrono::system_clock::now() + delay_);
    cv_.notify_all();
  }
  return due_ms_;
}

int64_t Compactor::pending_due_ms() const {
  std::lock_guard<std::mutex> lock(mu_);
  return due_ms_;
}

Status Compactor::last_status() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_status_;
}

void Compactor::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    if (stopping_) break;
    if (due_ms_ == 0 || running_) {
      cv_.wait(lock);
      continue;
    }
    if (std::chrono::steady_clock::now() < due_) {
      cv_.wait_until(lock, due_);
      continue;
    }
    RunLocked(lock);
  }
  // Deletions acknowledged as "scheduled" are erased before the process goes away.
  while (running_) cv_.wait(lock);
  if (completed_ < requested_) RunLocked(lock);
}

}  // namespace dtrain::embed
