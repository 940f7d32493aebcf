// The liveness monitor (runtime/comm/liveness.h): the table's judgement, and real hubs and spokes
// on loopback, with spokes in child processes that are stopped, killed or leave normally.
#include "runtime/comm/liveness.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <thread>

#include "tests/support/status_matchers.h"

namespace dtrain::comm {
namespace {

using std::chrono::milliseconds;

PeerView Alive(int64_t silent_ms, uint64_t issued = 5, uint64_t completed = 5) {
  PeerView v;
  v.state = PeerState::kAlive;
  v.silent_ms = silent_ms;
  v.issued = issued;
  v.completed = completed;
  v.host = "node pid 1";
  return v;
}

TEST(AssessPeersTest, SilenceWarnsAtHalfTheTimeoutAndFailsAtTheTimeoutNamingTheRank) {
  std::vector<PeerView> peers = {Alive(0), Alive(100), Alive(5000)};
  LivenessFinding f = AssessPeers(peers, milliseconds(10000));
  EXPECT_EQ(f.failed_rank, -1);
  EXPECT_EQ(f.suspects, std::vector<int>{2});
  EXPECT_NE(f.warning.find("rank 2 (node pid 1) silent 5.0 s"), std::string::npos) << f.warning;

  peers[2].silent_ms = 10000;
  f = AssessPeers(peers, milliseconds(10000));
  EXPECT_EQ(f.failed_rank, 2);
  EXPECT_NE(f.failure.find("rank 2 (node pid 1) stopped answering: no heartbeat for 10.0 s"),
            std::string::npos)
      << f.failure;
}

TEST(AssessPeersTest, ClosedConnectionFailsAtOnceAndADepartureIsNoFailure) {
  std::vector<PeerView> peers = {Alive(0), Alive(0), Alive(0)};
  peers[1].state = PeerState::kDeparted;
  EXPECT_EQ(AssessPeers(peers, milliseconds(10000)).failed_rank, -1);
  peers[2].state = PeerState::kClosed;
  LivenessFinding f = AssessPeers(peers, milliseconds(10000));
  EXPECT_EQ(f.failed_rank, 2);
  EXPECT_NE(f.failure.find("the process died"), std::string::npos) << f.failure;
}

TEST(AssessPeersTest, RankBehindACollectiveOthersWaitOnIsNamed) {
  // Ranks 0 and 2 entered collective #7 and wait; rank 1 is alive but has issued only 7.
  std::vector<PeerView> peers = {Alive(0, 8, 7), Alive(0, 7, 7), Alive(0, 8, 7)};
  peers[0].waiting_ms = 6000;
  peers[2].waiting_ms = 5500;
  LivenessFinding f = AssessPeers(peers, milliseconds(10000));
  EXPECT_EQ(f.failed_rank, -1);  // the collective's own deadline decides
  EXPECT_EQ(f.suspects, std::vector<int>{1});
  EXPECT_NE(f.warning.find("waited 6.0 s on collective #7, not yet entered by: rank 1"),
            std::string::npos)
      << f.warning;

  std::string why;
  EXPECT_EQ(BlameForDeadline(peers, 0, 7, milliseconds(10000), &why), 1);
  EXPECT_NE(why.find("rank 1 (node pid 1) never entered it"), std::string::npos) << why;
  peers[1].issued = 8;  // everyone entered: a mismatch or the transport, nobody to name
  EXPECT_EQ(BlameForDeadline(peers, 0, 7, milliseconds(10000), &why), -1);
}

TEST(LivenessEndpointTest, RoundTripsAndRefusesWhatItDidNotWrite) {
  LivenessEndpoint e;
  e.addresses = {"10.0.0.7", "127.0.0.1"};
  e.port = 40123;
  for (size_t i = 0; i < e.secret.size(); ++i) e.secret[i] = static_cast<uint8_t>(i * 7);
  StatusOr<LivenessEndpoint> back = LivenessEndpoint::Decode(e.Encode());
  ASSERT_OK(back);
  EXPECT_EQ(back->addresses, e.addresses);
  EXPECT_EQ(back->port, e.port);
  EXPECT_EQ(back->secret, e.secret);
  std::array<char, LivenessEndpoint::kEncodedBytes> zeros{};
  EXPECT_FALSE(LivenessEndpoint::Decode(zeros).ok());
}

constexpr milliseconds kTimeout(1000);

// A hub for 3 ranks whose failures land in `health` and warnings in `warnings`.
struct Hub {
  Hub() {
    auto hub = LivenessMonitor::StartHub(3, kTimeout, &endpoint);
    EXPECT_OK(hub);
    monitor = std::move(hub).value();
    monitor->Attach(health);
    monitor->SetWarningHandler([this](const std::string& message, const std::vector<int>& ranks) {
      std::lock_guard<std::mutex> lock(mu);
      warnings.push_back(message);
      warned_ranks.push_back(ranks);
    });
  }
  // Waits up to `limit` for the health to fail.
  bool FailsWithin(milliseconds limit) {
    health->WaitUntil(std::chrono::steady_clock::now() + limit, [] { return false; });
    return health->poisoned();  // WaitUntil returns early once it is
  }
  LivenessEndpoint endpoint;
  std::unique_ptr<LivenessMonitor> monitor;
  std::shared_ptr<CommHealth> health = std::make_shared<CommHealth>();
  std::mutex mu;
  std::vector<std::string> warnings;
  std::vector<std::vector<int>> warned_ranks;
};

// Runs a spoke for `rank` in a child process that then waits to be stopped or killed.
pid_t SpokeInChild(const LivenessEndpoint& endpoint, int rank) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    auto spoke = LivenessMonitor::StartSpoke(endpoint, rank, 3, kTimeout);
    if (!spoke.ok()) ::_exit(3);
    for (;;) ::pause();
  }
  return pid;
}

void Reap(pid_t pid) {
  ::kill(pid, SIGCONT);
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
}

TEST(LivenessMonitorTest, HealthySpokesKeepTheJobAliveAndAGoodbyeIsNoFailure) {
  Hub hub;
  auto one = LivenessMonitor::StartSpoke(hub.endpoint, 1, 3, kTimeout);
  auto two = LivenessMonitor::StartSpoke(hub.endpoint, 2, 3, kTimeout);
  ASSERT_OK(one);
  ASSERT_OK(two);
  std::shared_ptr<CommHealth> spoke_health = std::make_shared<CommHealth>();
  (*one)->Attach(spoke_health);
  EXPECT_FALSE(hub.FailsWithin(3 * kTimeout));
  EXPECT_TRUE(hub.warnings.empty());
  std::vector<PeerView> table = (*one)->Snapshot();  // spokes receive the hub's table
  ASSERT_EQ(table.size(), 3u);
  EXPECT_EQ(table[2].state, PeerState::kAlive);
  EXPECT_NE(table[2].host.find(" pid "), std::string::npos);
  two->reset();  // a normal end: goodbye
  EXPECT_FALSE(hub.FailsWithin(2 * kTimeout));
  EXPECT_EQ(hub.monitor->Snapshot()[2].state, PeerState::kDeparted);
  hub.monitor.reset();  // the hub leaves too: no failure for the spoke either
  std::this_thread::sleep_for(2 * kTimeout);
  EXPECT_FALSE(spoke_health->poisoned()) << spoke_health->reason().ToString();
}

TEST(LivenessMonitorTest, StoppedSpokeIsWarnedAboutThenBlamedWithinTheTimeout) {
  Hub hub;
  const pid_t child = SpokeInChild(hub.endpoint, 2);
  auto one = LivenessMonitor::StartSpoke(hub.endpoint, 1, 3, kTimeout);
  ASSERT_OK(one);
  std::shared_ptr<CommHealth> spoke_health = std::make_shared<CommHealth>();
  (*one)->Attach(spoke_health);
  EXPECT_FALSE(hub.FailsWithin(2 * kTimeout)) << hub.health->reason().ToString();
  ::kill(child, SIGSTOP);
  EXPECT_TRUE(hub.FailsWithin(kTimeout + milliseconds(1500)));
  EXPECT_EQ(hub.health->blamed_rank(), 2);
  EXPECT_NE(hub.health->reason().message().find("rank 2 ("), std::string::npos);
  EXPECT_NE(hub.health->reason().message().find("stopped answering"), std::string::npos)
      << hub.health->reason().ToString();
  {
    std::lock_guard<std::mutex> lock(hub.mu);
    ASSERT_FALSE(hub.warned_ranks.empty());
    EXPECT_EQ(hub.warned_ranks.front(), std::vector<int>{2}) << hub.warnings.front();
  }
  // The other spoke learns it from the hub's table, blaming the same rank.
  spoke_health->WaitUntil(std::chrono::steady_clock::now() + kTimeout, [] { return false; });
  EXPECT_TRUE(spoke_health->poisoned());
  EXPECT_EQ(spoke_health->blamed_rank(), 2);
  Reap(child);
}

TEST(LivenessMonitorTest, KilledSpokeIsBlamedAfterTheGrace) {
  Hub hub;
  const pid_t child = SpokeInChild(hub.endpoint, 1);
  auto two = LivenessMonitor::StartSpoke(hub.endpoint, 2, 3, kTimeout);
  ASSERT_OK(two);
  EXPECT_FALSE(hub.FailsWithin(2 * kTimeout)) << hub.health->reason().ToString();
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  EXPECT_TRUE(hub.FailsWithin(kTimeout + milliseconds(1500)));
  EXPECT_EQ(hub.health->blamed_rank(), 1);
  EXPECT_NE(hub.health->reason().message().find("rank 1 ("), std::string::npos)
      << hub.health->reason().ToString();
}

TEST(LivenessMonitorTest, AClientWithoutTheSecretIsNotARank) {
  Hub hub;
  LivenessEndpoint forged = hub.endpoint;
  forged.secret[0] ^= 0xff;
  auto impostor = LivenessMonitor::StartSpoke(forged, 1, 3, kTimeout);
  ASSERT_OK(impostor);  // the connection itself succeeds; its hello is dropped
  auto two = LivenessMonitor::StartSpoke(hub.endpoint, 2, 3, kTimeout);
  ASSERT_OK(two);
  // Rank 1 never said a valid hello: after the timeout it is blamed, not accepted.
  EXPECT_TRUE(hub.FailsWithin(kTimeout + milliseconds(1500)));
  EXPECT_EQ(hub.health->blamed_rank(), 1);
  EXPECT_NE(hub.health->reason().message().find("never reached rank 0's liveness port"),
            std::string::npos)
      << hub.health->reason().ToString();
}

}  // namespace
}  // namespace dtrain::comm
