#include "workers/embedding_store/service/admission.h"

#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <utility>

namespace dtrain::embed {
namespace {

// How often a decode waiter looks whether its caller gave up.
constexpr std::chrono::milliseconds kGiveUpPoll{20};

}  // namespace

AdmissionControl::Slot::Slot(Slot&& other) noexcept
    : owner_(std::exchange(other.owner_, nullptr)), decode_(other.decode_) {}

AdmissionControl::Slot& AdmissionControl::Slot::operator=(Slot&& other) noexcept {
  if (this != &other) {
    if (owner_ != nullptr) owner_->Release(decode_);
    owner_ = std::exchange(other.owner_, nullptr);
    decode_ = other.decode_;
  }
  return *this;
}

AdmissionControl::Slot::~Slot() {
  if (owner_ != nullptr) owner_->Release(decode_);
}

AdmissionControl::AdmissionControl(Options options) : options_(options) {}

StatusOr<AdmissionControl::Slot> AdmissionControl::AdmitRequest(const std::string& rpc) {
  std::lock_guard<std::mutex> lock(mu_);
  if (requests_ >= options_.max_requests) {
    return Status(StatusCode::kResourceExhausted,
                  rpc + ": the store is busy with " + std::to_string(requests_) +
                      " requests, its limit (--max-concurrent-requests " +
                      std::to_string(options_.max_requests) +
                      "); nothing was done, retry with backoff");
  }
  ++requests_;
  return Slot(this, /*decode=*/false);
}

StatusOr<AdmissionControl::Slot> AdmissionControl::AcquireDecode(
    const std::function<Status()>& give_up) {
  std::unique_lock<std::mutex> lock(mu_);
  while (decodes_ >= options_.max_decodes) {
    if (give_up) {
      lock.unlock();
      Status stop = give_up();
      lock.lock();
      if (!stop.ok()) return stop;
    }
    decode_freed_.wait_for(lock, kGiveUpPoll);
  }
  ++decodes_;
  decoded_since_trim_ = true;
  return Slot(this, /*decode=*/true);
}

int AdmissionControl::requests_in_flight() const {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_;
}

void AdmissionControl::Release(bool decode) {
  bool trim = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (decode) {
      --decodes_;
      decode_freed_.notify_one();
      return;
    }
    --requests_;
    if (requests_ == 0 && decoded_since_trim_ && options_.trim_when_idle) {
      decoded_since_trim_ = false;
      trim = true;
    }
  }
  // Freed image buffers and encoder activations sit in the allocator's arenas; without this the
  // process keeps its burst-time size.
  if (trim) ::malloc_trim(0);
}

}  // namespace dtrain::embed
