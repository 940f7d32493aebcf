// AdmissionControl: bounds the work the store takes on at once, so that a burst of requests is
// answered with a clear RESOURCE_EXHAUSTED (nothing done, safe to retry) instead of piling up
// decoded images and encoder activations until clients time out while their work still commits.
//
// Two limits: requests in flight (each handler holds a RequestSlot for its whole run), and image
// decodes in flight (a decoded photo is up to width x height x 3 bytes, and the encoder's
// activations come on top), whose waiters give up when their caller does. When the last request
// of a burst leaves, the allocator's free memory is handed back to the system (malloc_trim), so
// the resident size falls back after the burst instead of staying at its peak.
//
// Thread-safe.
#ifndef DTRAIN_WORKERS_EMBEDDING_STORE_SERVICE_ADMISSION_H_
#define DTRAIN_WORKERS_EMBEDDING_STORE_SERVICE_ADMISSION_H_

#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>

#include "runtime/common/status.h"

namespace dtrain::embed {

inline constexpr int kDefaultMaxConcurrentRequests = 32;
inline constexpr int kMaxConcurrentRequestsLimit = 4096;
inline constexpr int kDefaultMaxConcurrentDecodes = 2;

class AdmissionControl {
 public:
  struct Options {
    int max_requests = kDefaultMaxConcurrentRequests;  // >= 1
    int max_decodes = kDefaultMaxConcurrentDecodes;    // >= 1
    bool trim_when_idle = true;                        // malloc_trim after a burst
  };

  // Holds one unit of a limit until destroyed (or moved from).
  class Slot {
   public:
    Slot() = default;
    Slot(Slot&& other) noexcept;
    Slot& operator=(Slot&& other) noexcept;
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    ~Slot();

   private:
    friend class AdmissionControl;
    Slot(AdmissionControl* owner, bool decode) : owner_(owner), decode_(decode) {}
    AdmissionControl* owner_ = nullptr;
    bool decode_ = false;
  };

  explicit AdmissionControl(Options options);
  AdmissionControl(const AdmissionControl&) = delete;
  AdmissionControl& operator=(const AdmissionControl&) = delete;

  // A request slot, or RESOURCE_EXHAUSTED naming `rpc` and the limit when all are taken.
  StatusOr<Slot> AdmitRequest(const std::string& rpc);
  // Waits for a decode slot; polls `give_up` while waiting and returns its first non-OK status.
  StatusOr<Slot> AcquireDecode(const std::function<Status()>& give_up);

  int requests_in_flight() const;
  const Options& options() const { return options_; }

 private:
  void Release(bool decode);

  const Options options_;
  mutable std::mutex mu_;
  std::condition_variable decode_freed_;
  int requests_ = 0;
  int decodes_ = 0;
  bool decoded_since_trim_ = false;
};

}  // namespace dtrain::embed

#endif  // DTRAIN_WORKERS_EMBEDDING_STORE_SERVICE_ADMISSION_H_
