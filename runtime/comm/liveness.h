// Liveness: names the rank that stopped answering, within the communicator's timeout.
//
// A collective's deadline alone cannot tell who is at fault: every healthy rank waits the same
// way, and the one that notices first is not the culprit. So beside the collectives' transport
// runs a TCP star. Rank 0 (the hub) listens on an ephemeral port; every other rank (a spoke)
// connects, proves it belongs to the job with a random secret broadcast over MPI, and sends a
// heartbeat every timeout/10 (at most 1 s) carrying its progress: collectives issued and
// completed. The hub keeps when it last heard from each rank and sends the table back every
// period. From the table:
//  - at half the timeout a warning names the silent ranks, or the ranks that have not entered a
//    collective another rank waits on;
//  - a rank silent for the whole timeout, or whose connection closed without a goodbye, fails
//    the job on every rank at once, blamed by name (every attached communicator is poisoned);
//  - a collective whose deadline passes is blamed on the rank that never entered it.
// Heartbeats come from a thread of their own, so a long computation is not a stall: only a
// stopped or frozen process, a dead one, or one cut off from the network goes silent.
#ifndef DTRAIN_RUNTIME_COMM_LIVENESS_H_
#define DTRAIN_RUNTIME_COMM_LIVENESS_H_

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "runtime/comm/health.h"
#include "runtime/common/status.h"

namespace dtrain::comm {

enum class PeerState : uint8_t {
  kConnecting = 0,  // has not said hello yet
  kAlive = 1,
  kClosed = 2,    // its connection ended without a goodbye: dead, or its host went away
  kDeparted = 3,  // said goodbye (its communicator was destroyed normally)
};

// What rank 0 knows of one rank; every rank receives the whole table.
struct PeerView {
  PeerState state = PeerState::kConnecting;
  uint64_t issued = 0;     // collectives entered
  uint64_t completed = 0;  // collectives finished
  int64_t silent_ms = 0;   // since its last message (since the start while connecting)
  int64_t waiting_ms = 0;  // on its oldest unfinished collective; 0 when it waits on none
  std::string host;        // where it runs, once it said hello: "vm pid 1234"
};

// "rank 2 (vm pid 1234)", or "rank 2" when its host is not known.
std::string DescribeRank(const std::vector<PeerView>& peers, int rank);

struct LivenessFinding {
  int failed_rank = -1;       // silent for the whole timeout, or gone without a goodbye
  std::string failure;        // why, naming it
  std::vector<int> suspects;  // past half the timeout: the silent ranks, else those behind
  std::string warning;        // names the suspects; empty when there are none
};

// The hub's judgement of the table, every period. Pure: exposed for tests.
LivenessFinding AssessPeers(const std::vector<PeerView>& peers, std::chrono::milliseconds timeout);

// For collective `seq` that `rank` waited on for the whole timeout: the rank to blame (-1 when
// the table cannot tell) and why, in words.
int BlameForDeadline(const std::vector<PeerView>& peers, int rank, uint64_t seq,
                     std::chrono::milliseconds timeout, std::string* why);

// How to reach the hub: what rank 0 broadcasts to the others.
struct LivenessEndpoint {
  std::vector<std::string> addresses;  // rank 0's IPv4 addresses, loopback last
  uint16_t port = 0;
  std::array<uint8_t, 16> secret{};

  static constexpr size_t kEncodedBytes = 1024;  // fixed, so it can be broadcast in one go
  // Fixed-size wire form; Decode fails on anything Encode did not produce.
  std::array<char, kEncodedBytes> Encode() const;
  static StatusOr<LivenessEndpoint> Decode(const std::array<char, kEncodedBytes>& data);
};

// One per communicator group (an MPI communicator and the NCCL one built over it share it).
// Thread-safe.
class LivenessMonitor {
 public:
  // Called from the monitor's thread with a warning and the ranks it names.
  using WarningHandler =
      std::function<void(const std::string& message, const std::vector<int>& ranks)>;

  // Rank 0 of `size` ranks: listens on an ephemeral TCP port of every interface; `*endpoint`
  // says how to reach it.
  static StatusOr<std::unique_ptr<LivenessMonitor>> StartHub(int size,
                                                             std::chrono::milliseconds timeout,
                                                             LivenessEndpoint* endpoint);
  // Any other rank: connects to the hub (each address in turn) and says hello.
  static StatusOr<std::unique_ptr<LivenessMonitor>> StartSpoke(const LivenessEndpoint& endpoint,
                                                               int rank, int size,
                                                               std::chrono::milliseconds timeout);
  // Says goodbye (a departure is not a failure) and stops the thread.
  ~LivenessMonitor();
  LivenessMonitor(const LivenessMonitor&) = delete;
  LivenessMonitor& operator=(const LivenessMonitor&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  // How long a rank may stay silent: the communicator timeout, at least 1 s.
  std::chrono::milliseconds timeout() const { return timeout_; }
  // How often heartbeats and tables are sent.
  std::chrono::milliseconds period() const { return period_; }

  // Communicators a failure poisons (held weakly; one poisoned before attaching stays so).
  void Attach(const std::shared_ptr<CommHealth>& health);
  void SetWarningHandler(WarningHandler handler);

  // Progress over every attached communicator: one issue order, so counts compare across ranks.
  // NoteIssued returns the collective's sequence number.
  uint64_t NoteIssued() { return issued_.fetch_add(1, std::memory_order_relaxed); }
  void NoteCompleted() { completed_.fetch_add(1, std::memory_order_relaxed); }

  // The latest table: the hub's own, or the last one a spoke received.
  std::vector<PeerView> Snapshot() const;
  // The rank to blame for collective `seq` that missed its deadline (see BlameForDeadline).
  int BlameForDeadline(uint64_t seq, std::string* why) const;

  struct Connection;  // one TCP connection and its buffers (liveness.cc)

 private:
  LivenessMonitor(int rank, int size, std::chrono::milliseconds timeout);
  void HubLoop();
  void SpokeLoop();
  void Fail(int rank, const std::string& why);
  void Warn(const std::string& message, const std::vector<int>& ranks);
  void Wake();

  const int rank_;
  const int size_;
  const std::chrono::milliseconds timeout_;
  const std::chrono::milliseconds period_;
  std::array<uint8_t, 16> secret_{};
  int listen_fd_ = -1;               // hub
  std::unique_ptr<Connection> hub_;  // spoke: its connection to rank 0
  int wake_pipe_[2] = {-1, -1};
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> issued_{0};
  std::atomic<uint64_t> completed_{0};

  mutable std::mutex mu_;
  std::vector<PeerView> table_;                     // guarded by mu_
  std::vector<std::weak_ptr<CommHealth>> healths_;  // guarded by mu_
  WarningHandler on_warning_;                       // guarded by mu_
  int failed_rank_ = -1;                            // guarded by mu_
  std::string failure_;                             // guarded by mu_
  std::thread thread_;
};

}  // namespace dtrain::comm

#endif  // DTRAIN_RUNTIME_COMM_LIVENESS_H_
