// Tests for runtime/coordinator/scheduler and what feeds it: the cluster file (the exact text of
// every kind of error), capacity providers, gang placement across hosts, priority, aging, FIFO,
// backfill, the no-starvation reservation, and a seeded randomized property test of the slot
// accounting.
#include "runtime/coordinator/scheduler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "runtime/coordinator/cluster_file.h"

namespace dtrain::coordinator {
namespace {

constexpr int64_t kMinute = 60 * 1000;

ClusterConfig Cluster(std::vector<std::pair<std::string, int>> hosts) {
  ClusterConfig c;
  for (auto& [name, slots] : hosts) c.hosts.push_back({name, slots});
  return c;
}

SchedulerOptions Options(double aging_per_minute, int64_t max_wait_ms) {
  SchedulerOptions o;
  o.aging_per_minute = aging_per_minute;
  o.max_wait_for_backfill_ms = max_wait_ms;
  return o;
}

// Options where only priority and FIFO decide the order, and backfill never stops.
SchedulerOptions NoAgingNoReservation() { return Options(0.0, INT64_MAX); }

QueuedJob Job(int64_t id, int ranks, int priority = 0, int64_t submitted_ms = 0) {
  QueuedJob j;
  j.id = id;
  j.ranks = ranks;
  j.priority = priority;
  j.submitted_ms = submitted_ms;
  return j;
}

Placement Place(int64_t job_id, std::vector<std::pair<std::string, int>> slots) {
  Placement p;
  p.job_id = job_id;
  p.slots = std::move(slots);
  return p;
}

// "id=placement;..." in start order, for compact assertions.
std::string Started(const std::vector<Placement>& placements) {
  std::string out;
  for (const Placement& p : placements) {
    if (!out.empty()) out += ';';
    out += std::to_string(p.job_id) + "=" + p.ToString();
  }
  return out;
}

// The error message of a cluster YAML that must fail to parse.
std::string ParseError(const std::string& yaml) {
  auto parsed = ParseClusterFile(yaml, "cluster.yaml");
  EXPECT_FALSE(parsed.ok()) << yaml;
  if (parsed.ok()) return "";
  EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
  return parsed.status().message();
}

// ----------------------------------------------------------------------------- cluster YAML

TEST(ParseClusterConfigTest, ReadsHostsInOrder) {
  auto parsed = ParseClusterFile(
      "# two machines\n"
      "hosts:\n"
      "  - name: node-a.example\n"
      "    slots: 8\n"
      "  - {name: localhost, slots: 1}\n",
      "cluster.yaml");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  ASSERT_TRUE(parsed->hosts.has_value());
  const ClusterConfig& cluster = *parsed->hosts;
  ASSERT_EQ(cluster.hosts.size(), 2u);
  EXPECT_EQ(cluster.hosts[0].name, "node-a.example");
  EXPECT_EQ(cluster.hosts[0].slots, 8);
  EXPECT_EQ(cluster.hosts[1].name, "localhost");
  EXPECT_EQ(cluster.hosts[1].slots, 1);
  EXPECT_EQ(cluster.total_slots(), 9);
  EXPECT_FALSE(parsed->launcher.backend.has_value());
  EXPECT_TRUE(parsed->launcher.settings.empty());
}

TEST(ParseClusterConfigTest, ReadsTheLauncherSectionWithWhereEachSettingWasGiven) {
  auto parsed = ParseClusterFile(
      "hosts: [{name: a, slots: 2}]\n"
      "launcher:\n"
      "  backend: local-mpirun\n"
      "  mpirun: /opt/openmpi/bin/mpirun\n",
      "cluster.yaml");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  ASSERT_TRUE(parsed->launcher.backend.has_value());
  EXPECT_EQ(parsed->launcher.backend->value, "local-mpirun");
  EXPECT_EQ(parsed->launcher.backend->origin, "cluster.yaml:3:12");
  ASSERT_EQ(parsed->launcher.settings.size(), 1u);
  EXPECT_EQ(parsed->launcher.settings.at("mpirun").value, "/opt/openmpi/bin/mpirun");
  EXPECT_EQ(parsed->launcher.settings.at("mpirun").origin, "cluster.yaml:4:11");
}

TEST(ParseClusterConfigTest, HostsMayBeLeftToTheLauncher) {
  auto parsed = ParseClusterFile("launcher: {backend: local-mpirun}\n", "cluster.yaml");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_FALSE(parsed->hosts.has_value());
}

TEST(ParseClusterConfigTest, LauncherSectionShape) {
  EXPECT_EQ(ParseError("launcher: local-mpirun\n"),
            "cluster.yaml:1:11: launcher: expected a map with 'backend' and the backend's "
            "settings, got 'local-mpirun'");
  EXPECT_EQ(ParseError("launcher:\n  backend: [a]\n  mpirun: {path: x}\n  shim:\n"),
            "cluster.yaml:2:12: launcher.backend: expected a launcher name, got a list\n"
            "cluster.yaml:3:11: launcher.mpirun: expected a non-empty string, got a map\n"
            "cluster.yaml:4:3: launcher.shim: expected a non-empty string, got nothing (null)");
  EXPECT_EQ(ParseError("launcher:\n  mpirun: a\n  mpirun: b\n"),
            "cluster.yaml:3:3: launcher.mpirun: duplicate field (first given at line 2)");
}

TEST(ParseClusterConfigTest, SyntaxError) {
  EXPECT_EQ(ParseError("hosts: [{name: a, slots: 2}\n"),
            "cluster.yaml:2:1: YAML syntax error: end of sequence flow not found");
}

TEST(ParseClusterConfigTest, EmptyDocument) {
  EXPECT_EQ(ParseError(""), "cluster.yaml:1:1: (root): expected a map with 'hosts'");
  EXPECT_EQ(ParseError("# nothing\n"), "cluster.yaml:1:1: (root): expected a map with 'hosts'");
}

TEST(ParseClusterConfigTest, RootNotAMap) {
  EXPECT_EQ(ParseError("- a\n- b\n"),
            "cluster.yaml:1:1: (root): expected a map with 'hosts', got a list");
}

TEST(ParseClusterConfigTest, SeveralDocuments) {
  EXPECT_EQ(ParseError("hosts: [{name: a, slots: 1}]\n---\nhosts: []\n"),
            "cluster.yaml:3:1: (root): expected a single YAML document, got 2");
}

TEST(ParseClusterConfigTest, MissingHosts) {
  EXPECT_EQ(ParseError("{}\n"), "cluster.yaml:1:1: hosts: required field is missing");
}

TEST(ParseClusterConfigTest, UnknownTopLevelField) {
  EXPECT_EQ(ParseError("hosts: [{name: a, slots: 1}]\nhost: b\n"),
            "cluster.yaml:2:1: host: unknown field; expected one of: hosts, launcher (did you "
            "mean 'hosts'?)");
}

TEST(ParseClusterConfigTest, DuplicateField) {
  EXPECT_EQ(ParseError("hosts: [{name: a, slots: 1}]\nhosts: [{name: b, slots: 1}]\n"),
            "cluster.yaml:2:1: hosts: duplicate field (first given at line 1)");
}

TEST(ParseClusterConfigTest, HostsNotANonEmptyList) {
  EXPECT_EQ(ParseError("hosts: []\n"),
            "cluster.yaml:1:8: hosts: expected a non-empty list of hosts, got an empty list");
  EXPECT_EQ(ParseError("hosts:\n"),
            "cluster.yaml:1:1: hosts: expected a non-empty list of hosts, got nothing (null)");
  EXPECT_EQ(ParseError("hosts: {name: a, slots: 1}\n"),
            "cluster.yaml:1:8: hosts: expected a non-empty list of hosts, got a map");
}

TEST(ParseClusterConfigTest, HostNotAMap) {
  EXPECT_EQ(ParseError("hosts:\n  - localhost\n"),
            "cluster.yaml:2:5: hosts[0]: expected a map with 'name' and 'slots', got 'localhost'");
}

TEST(ParseClusterConfigTest, UnknownHostField) {
  EXPECT_EQ(ParseError("hosts:\n  - name: a\n    slots: 1\n    gpus: 2\n"),
            "cluster.yaml:4:5: hosts[0].gpus: unknown field; expected one of: name, slots");
}

TEST(ParseClusterConfigTest, MissingHostFields) {
  EXPECT_EQ(ParseError("hosts:\n  - name: a\n  - slots: 2\n"),
            "cluster.yaml:2:5: hosts[0].slots: required field is missing\n"
            "cluster.yaml:3:5: hosts[1].name: required field is missing");
}

TEST(ParseClusterConfigTest, BadHostName) {
  EXPECT_EQ(ParseError("hosts: [{name: '', slots: 1}]\n"),
            "cluster.yaml:1:16: hosts[0].name: expected a host name of letters, digits, '_', '.' "
            "and '-', got ''");
  EXPECT_EQ(ParseError("hosts: [{name: 'a b', slots: 1}]\n"),
            "cluster.yaml:1:16: hosts[0].name: expected a host name of letters, digits, '_', '.' "
            "and '-', got 'a b'");
  EXPECT_EQ(ParseError("hosts: [{name: [a], slots: 1}]\n"),
            "cluster.yaml:1:16: hosts[0].name: expected a host name of letters, digits, '_', '.' "
            "and '-', got a list");
}

TEST(ParseClusterConfigTest, DuplicateHostName) {
  EXPECT_EQ(ParseError("hosts:\n"
                       "  - {name: a, slots: 1}\n"
                       "  - {name: b, slots: 1}\n"
                       "  - {name: a, slots: 2}\n"),
            "cluster.yaml:4:12: hosts[2].name: duplicate host 'a' (first given at line 2)");
}

TEST(ParseClusterConfigTest, BadSlots) {
  EXPECT_EQ(ParseError("hosts: [{name: a, slots: 0}]\n"),
            "cluster.yaml:1:26: hosts[0].slots: expected an integer >= 1, got 0");
  EXPECT_EQ(ParseError("hosts: [{name: a, slots: -3}]\n"),
            "cluster.yaml:1:26: hosts[0].slots: expected an integer >= 1, got -3");
  EXPECT_EQ(ParseError("hosts: [{name: a, slots: 1.5}]\n"),
            "cluster.yaml:1:26: hosts[0].slots: expected an integer >= 1, got 1.5");
  EXPECT_EQ(ParseError("hosts: [{name: a, slots: '4'}]\n"),
            "cluster.yaml:1:26: hosts[0].slots: expected an integer >= 1, got '4'");
  EXPECT_EQ(ParseError("hosts: [{name: a, slots: 99999999999}]\n"),
            "cluster.yaml:1:26: hosts[0].slots: expected an integer in [1, 2147483647], got "
            "99999999999");
}

TEST(ParseClusterConfigTest, TooManySlotsInTotal) {
  EXPECT_EQ(ParseError("hosts:\n"
                       "  - {name: a, slots: 2147483647}\n"
                       "  - {name: b, slots: 1}\n"),
            "cluster.yaml:2:3: hosts: expected at most 2147483647 slots in total, got 2147483648");
}

TEST(ParseClusterConfigTest, CollectsEveryErrorInLineOrder) {
  EXPECT_EQ(ParseError("hosts:\n"
                       "  - {name: a, slots: 0}\n"
                       "  - {name: a, slots: 2, extra: 1}\n"
                       "  - 7\n"
                       "timeout: 3\n"),
            "cluster.yaml:2:22: hosts[0].slots: expected an integer >= 1, got 0\n"
            "cluster.yaml:3:25: hosts[1].extra: unknown field; expected one of: name, slots\n"
            "cluster.yaml:4:5: hosts[2]: expected a map with 'name' and 'slots', got 7\n"
            "cluster.yaml:5:1: timeout: unknown field; expected one of: hosts, launcher");
}

TEST(CapacityTest, SchedulerTakesItsSlotsFromTheProvider) {
  StaticHostList hosts(Cluster({{"a", 2}, {"b", 3}}));
  auto scheduler = Scheduler::FromCapacity(hosts, SchedulerOptions());
  ASSERT_TRUE(scheduler.ok()) << scheduler.status().ToString();
  EXPECT_EQ((*scheduler)->free_slots(), 5);
  EXPECT_EQ((*scheduler)->cluster().hosts[1].name, "b");

  // A provider that cannot tell, or reports nothing to run on, leaves no scheduler.
  class Unreachable final : public CapacityProvider {
   public:
    StatusOr<ClusterConfig> Capacity() const override {
      return Unavailable("cannot reach the API server at https://k8s:6443");
    }
  };
  auto failed = Scheduler::FromCapacity(Unreachable(), SchedulerOptions());
  EXPECT_EQ(failed.status().message(), "cannot reach the API server at https://k8s:6443");
  auto empty = Scheduler::FromCapacity(StaticHostList(ClusterConfig()), SchedulerOptions());
  EXPECT_EQ(empty.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(empty.status().message(), "the cluster has no slots ()");
}

TEST(DefaultClusterTest, IsThisMachineWithAtLeastOneSlot) {
  ClusterConfig c = DefaultCluster();
  ASSERT_EQ(c.hosts.size(), 1u);
  EXPECT_EQ(c.hosts[0].name, "localhost");
  EXPECT_GE(c.hosts[0].slots, 1);
}

// ----------------------------------------------------------------------------- basics

TEST(PlacementTest, ToString) {
  EXPECT_EQ(Place(1, {{"a", 2}, {"b", 1}}).ToString(), "a:2,b:1");
  EXPECT_EQ(Place(1, {}).ToString(), "");
}

TEST(SchedulerTest, CanEverFit) {
  Scheduler one(Cluster({{"localhost", 4}}), SchedulerOptions());
  EXPECT_TRUE(one.CanEverFit(1).ok());
  EXPECT_TRUE(one.CanEverFit(4).ok());
  Status too_big = one.CanEverFit(8);
  EXPECT_EQ(too_big.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(too_big.message(), "job needs 8 slots, the cluster has 4 (localhost:4)");
  Status none = one.CanEverFit(0);
  EXPECT_EQ(none.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(none.message(), "job needs at least 1 slot, got 0");

  Scheduler two(Cluster({{"a", 4}, {"b", 2}}), SchedulerOptions());
  EXPECT_TRUE(two.CanEverFit(6).ok());
  EXPECT_EQ(two.CanEverFit(7).message(), "job needs 7 slots, the cluster has 6 (a:4,b:2)");

  std::vector<std::pair<std::string, int>> many;
  for (int i = 0; i < 10; ++i) many.emplace_back("h" + std::to_string(i), 2);
  Scheduler big(Cluster(many), SchedulerOptions());
  EXPECT_EQ(big.CanEverFit(21).message(),
            "job needs 21 slots, the cluster has 20 "
            "(h0:2,h1:2,h2:2,h3:2,h4:2,h5:2,h6:2,h7:2 and 2 more hosts)");
}

TEST(SchedulerTest, ReserveAndRelease) {
  Scheduler s(Cluster({{"a", 4}, {"b", 2}}), SchedulerOptions());
  EXPECT_EQ(s.free_slots(), 6);
  EXPECT_EQ(s.used_slots(), 0);
  ASSERT_TRUE(s.Reserve(Place(7, {{"b", 1}, {"a", 2}, {"b", 1}})).ok());
  EXPECT_EQ(s.free_slots(), 2);
  EXPECT_EQ(s.used_slots(), 4);
  EXPECT_EQ(s.FreeByHost(), (std::vector<std::pair<std::string, int>>{{"a", 2}, {"b", 0}}));

  Status again = s.Reserve(Place(7, {{"a", 1}}));
  EXPECT_EQ(again.code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(again.message(), "job 7 already holds slots (a:2,b:2)");

  Status unknown = s.Reserve(Place(8, {{"a", 1}, {"c", 1}}));
  EXPECT_EQ(unknown.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(unknown.message(),
            "placement a:1,c:1 for job 8 names unknown host 'c' (cluster: a:4,b:2)");

  Status zero = s.Reserve(Place(8, {{"a", 0}}));
  EXPECT_EQ(zero.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(zero.message(), "placement a:0 for job 8 gives host 'a' 0 slots; expected >= 1");

  Status empty = s.Reserve(Place(8, {}));
  EXPECT_EQ(empty.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(empty.message(), "placement for job 8 has no slots");

  Status full = s.Reserve(Place(8, {{"a", 1}, {"b", 1}}));
  EXPECT_EQ(full.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(full.message(),
            "placement a:1,b:1 for job 8 does not fit: host 'b' has 0 free of 2 slots");
  // A failed Reserve takes nothing.
  EXPECT_EQ(s.free_slots(), 2);

  s.Release(99);  // unknown: no-op
  EXPECT_EQ(s.free_slots(), 2);
  s.Release(7);
  EXPECT_EQ(s.free_slots(), 6);
  s.Release(7);  // twice: no-op
  EXPECT_EQ(s.free_slots(), 6);
  EXPECT_TRUE(s.Reserve(Place(8, {{"a", 4}, {"b", 2}})).ok());
  EXPECT_EQ(s.free_slots(), 0);
}

// ----------------------------------------------------------------------------- gang placement

TEST(SchedulerTest, GangJobWaitsForAllItsSlots) {
  Scheduler s(Cluster({{"localhost", 4}}), NoAgingNoReservation());
  ASSERT_TRUE(s.Reserve(Place(1, {{"localhost", 1}})).ok());
  ASSERT_TRUE(s.Reserve(Place(2, {{"localhost", 1}})).ok());
  std::vector<QueuedJob> pending = {Job(3, 3)};
  EXPECT_TRUE(s.Schedule(pending, 0).empty());  // 2 free: no partial start
  EXPECT_EQ(s.free_slots(), 2);
  s.Release(1);
  EXPECT_EQ(Started(s.Schedule(pending, 1)), "3=localhost:3");
  EXPECT_EQ(s.free_slots(), 0);
  EXPECT_TRUE(s.Schedule(pending, 2).empty());  // already running: never started twice
}

TEST(SchedulerTest, SpansTheFewestHosts) {
  // 6 ranks: a holds 4, and of b and c (2 each) the first in host order takes the rest.
  Scheduler s(Cluster({{"a", 4}, {"b", 2}, {"c", 2}}), NoAgingNoReservation());
  EXPECT_EQ(Started(s.Schedule({Job(1, 6)}, 0)), "1=a:4,b:2");
  EXPECT_EQ(s.FreeByHost(),
            (std::vector<std::pair<std::string, int>>{{"a", 0}, {"b", 0}, {"c", 2}}));
}

TEST(SchedulerTest, OneHostWhenOneHoldsIt_TheTightest) {
  // Both a (4 free) and b (2 free) hold 2 ranks; b is chosen so that a stays whole for a 4.
  Scheduler s(Cluster({{"a", 4}, {"b", 2}}), NoAgingNoReservation());
  EXPECT_EQ(Started(s.Schedule({Job(1, 2)}, 0)), "1=b:2");
  EXPECT_EQ(Started(s.Schedule({Job(2, 4)}, 0)), "2=a:4");
}

TEST(SchedulerTest, RemainderGoesToTheTightestHost) {
  // Free: a 1, b 3, c 3, d 2. Four ranks need two hosts: b (most free, first in host order)
  // whole, then 1 more on the tightest host that holds it: a.
  Scheduler s(Cluster({{"a", 2}, {"b", 3}, {"c", 3}, {"d", 2}}), NoAgingNoReservation());
  ASSERT_TRUE(s.Reserve(Place(100, {{"a", 1}})).ok());
  EXPECT_EQ(Started(s.Schedule({Job(1, 4)}, 0)), "1=a:1,b:3");
  // Free: c 3, d 2. Five ranks: c and d.
  EXPECT_EQ(Started(s.Schedule({Job(2, 5)}, 0)), "2=c:3,d:2");
  EXPECT_EQ(s.free_slots(), 0);
}

TEST(SchedulerTest, PlacementIsDeterministic) {
  auto run = [] {
    Scheduler s(Cluster({{"a", 3}, {"b", 3}, {"c", 3}}), NoAgingNoReservation());
    std::string out;
    out += Started(s.Schedule({Job(1, 2), Job(2, 4), Job(3, 1)}, 0));
    s.Release(2);
    out += "|" + Started(s.Schedule({Job(4, 5), Job(5, 1)}, 0));
    return out;
  };
  // 1: a, b, c all hold 2: the first in host order. 2: b whole (3 free, before c), then 1 on
  // the tightest: a. 3: c. After 2 ends (a 1, b 3, c 2 free): 4 takes b whole and c; 5 takes a.
  const std::string first = run();
  EXPECT_EQ(first, "1=a:2;2=a:1,b:3;3=c:1|4=b:3,c:2;5=a:1");
  EXPECT_EQ(run(), first);
}

// ----------------------------------------------------------------------------- avoided hosts

QueuedJob Avoiding(int64_t id, int ranks, std::vector<std::string> hosts) {
  QueuedJob j = Job(id, ranks);
  j.avoid_hosts = std::move(hosts);
  return j;
}

TEST(SchedulerTest, RetryAvoidsTheHostItFailedOn) {
  // Without the avoid set, 2 ranks go to the first host; the retry of a job that failed on a
  // goes to b, and the next job is free to use a.
  Scheduler s(Cluster({{"a", 1}, {"b", 1}, {"c", 1}}), NoAgingNoReservation());
  EXPECT_EQ(Started(s.Schedule({Avoiding(1, 2, {"a"})}, 0)), "1=b:1,c:1");
  EXPECT_EQ(Started(s.Schedule({Job(2, 1)}, 0)), "2=a:1");
}

TEST(SchedulerTest, AvoidingJobWaitsForTheOtherHostsRatherThanUseTheBadOne) {
  // a and c are free (2 slots, enough in number), but a is the host to avoid: the job waits for
  // b, and meanwhile a small job may use a.
  Scheduler s(Cluster({{"a", 1}, {"b", 1}, {"c", 1}}), NoAgingNoReservation());
  ASSERT_TRUE(s.Reserve(Place(100, {{"b", 1}})).ok());
  EXPECT_EQ(Started(s.Schedule({Avoiding(1, 2, {"a"})}, 0)), "");
  EXPECT_EQ(s.free_slots(), 2);
  s.Release(100);
  EXPECT_EQ(Started(s.Schedule({Avoiding(1, 2, {"a"}), Job(2, 1)}, 0)), "1=b:1,c:1;2=a:1");
}

TEST(SchedulerTest, AvoidedHostIsUsedWhenTheOthersCanNeverHoldTheGang) {
  // Only a and b exist and the job needs both: avoiding a would strand it forever.
  Scheduler s(Cluster({{"a", 2}, {"b", 2}}), NoAgingNoReservation());
  EXPECT_EQ(Started(s.Schedule({Avoiding(1, 4, {"a"})}, 0)), "1=a:2,b:2");
}

TEST(SchedulerTest, AvoidingAHostOutsideTheClusterChangesNothing) {
  Scheduler s(Cluster({{"a", 2}, {"b", 2}}), NoAgingNoReservation());
  EXPECT_EQ(Started(s.Schedule({Avoiding(1, 2, {"gone"})}, 0)), "1=a:2");
}

// ----------------------------------------------------------------------------- order

TEST(SchedulerTest, HigherPriorityFirst) {
  Scheduler s(Cluster({{"localhost", 2}}), NoAgingNoReservation());
  // Submitted later, but priority 5 beats 1 and 0.
  std::vector<QueuedJob> pending = {Job(1, 2, 0, 0), Job(2, 2, 1, 10), Job(3, 2, 5, 20)};
  EXPECT_EQ(Started(s.Schedule(pending, 100)), "3=localhost:2");
  s.Release(3);
  pending.pop_back();
  EXPECT_EQ(Started(s.Schedule(pending, 200)), "2=localhost:2");
}

TEST(SchedulerTest, FifoWithinAPriority) {
  Scheduler s(Cluster({{"localhost", 1}}), NoAgingNoReservation());
  // Same priority: earliest submission first, then lowest id; input order does not matter.
  std::vector<QueuedJob> pending = {Job(9, 1, 3, 50), Job(4, 1, 3, 20), Job(2, 1, 3, 20)};
  EXPECT_EQ(Started(s.Schedule(pending, 100)), "2=localhost:1");
  s.Release(2);
  pending.pop_back();
  EXPECT_EQ(Started(s.Schedule(pending, 100)), "4=localhost:1");
  s.Release(4);
  pending.pop_back();
  EXPECT_EQ(Started(s.Schedule(pending, 100)), "9=localhost:1");
}

TEST(SchedulerTest, AgingLetsAnOldLowPriorityJobOvertake) {
  // Job 1: priority 0 since minute 0. Job 2: priority 5, submitted later. With 1 point per
  // minute, job 1 leads by (minutes it waited longer) - 5.
  auto winner = [](double aging, int64_t second_submitted_ms, int64_t now_ms) {
    Scheduler s(Cluster({{"localhost", 1}}), Options(aging, INT64_MAX));
    auto started = s.Schedule({Job(2, 1, 5, second_submitted_ms), Job(1, 1, 0, 0)}, now_ms);
    return started.empty() ? int64_t{-1} : started[0].job_id;
  };
  EXPECT_EQ(winner(1.0, 3 * kMinute, 4 * kMinute), 2);    // 3 minutes older: not enough
  EXPECT_EQ(winner(1.0, 3 * kMinute, 600 * kMinute), 2);  // the gap does not grow with time
  EXPECT_EQ(winner(1.0, 6 * kMinute, 7 * kMinute), 1);    // 6 minutes older: overtakes
  EXPECT_EQ(winner(1.0, 5 * kMinute, 6 * kMinute), 1);    // exactly 5: tie, FIFO
  EXPECT_EQ(winner(0.0, 60 * kMinute, 61 * kMinute), 2);  // no aging: priority only
}

TEST(SchedulerTest, AgingOfAWaitingJobOutgrowsAFreshOne) {
  // The job submitted now has aged 0 minutes; the one waiting 20 minutes at 0.5 points per
  // minute has effective priority 10 > 9.
  Scheduler s(Cluster({{"localhost", 1}}), Options(0.5, INT64_MAX));
  const int64_t now = 20 * kMinute;
  EXPECT_EQ(Started(s.Schedule({Job(1, 1, 9, now), Job(2, 1, 0, 0)}, now)), "2=localhost:1");
}

// ----------------------------------------------------------------------------- backfill

TEST(SchedulerTest, SmallJobsBackfillWhileTheBigOneWaits) {
  Scheduler s(Cluster({{"a", 4}, {"b", 4}}), Options(0.0, 10 * kMinute));
  ASSERT_TRUE(s.Reserve(Place(100, {{"a", 4}, {"b", 1}})).ok());  // 3 free
  // The 8-rank head (priority 9) waits; the smaller ones behind it that fit start in order.
  std::vector<QueuedJob> pending = {Job(1, 8, 9, 0), Job(2, 2, 0, 0), Job(3, 2, 0, 1),
                                    Job(4, 1, 0, 2)};
  EXPECT_EQ(Started(s.Schedule(pending, kMinute)), "2=b:2;4=b:1");
  EXPECT_EQ(s.free_slots(), 0);
}

TEST(SchedulerTest, JobsAheadOfTheHeadStartEvenWhenItStarves) {
  Scheduler s(Cluster({{"localhost", 4}}), Options(0.0, 10 * kMinute));
  ASSERT_TRUE(s.Reserve(Place(100, {{"localhost", 2}})).ok());
  // Job 1 ranks above the starving head (job 2) and fits, so it starts; job 3 is behind.
  std::vector<QueuedJob> pending = {Job(1, 1, 5, 0), Job(2, 4, 1, 0), Job(3, 1, 0, 0)};
  EXPECT_EQ(Started(s.Schedule(pending, 60 * kMinute)), "1=localhost:1");
}

// Issue 16: a held job, or one waiting for a dependency, neither starts nor becomes the starving
// head whose reservation would stop everything behind it.
TEST(SchedulerTest, BlockedJobsNeitherStartNorReserveSlots) {
  Scheduler s(Cluster({{"localhost", 4}}), Options(0.0, 10 * kMinute));
  QueuedJob held = Job(1, 4, 9, 0);
  held.blocked = "held by user";
  QueuedJob waiting = Job(2, 1, 5, 0);
  waiting.blocked = "waiting for job 7 to succeed";
  // Long past the backfill limit: were job 1 the head, nothing would start.
  const std::vector<QueuedJob> pending = {held, waiting, Job(3, 2, 0, 0)};
  EXPECT_EQ(s.StartOrder(pending, 60 * kMinute), std::vector<int64_t>{3});
  EXPECT_EQ(Started(s.Schedule(pending, 60 * kMinute)), "3=localhost:2");
  EXPECT_EQ(s.free_slots(), 2);
  // Released, it keeps its submission time and priority: first in line again.
  held.blocked.clear();
  EXPECT_EQ(s.StartOrder({held, Job(4, 1, 0, 0)}, 60 * kMinute), (std::vector<int64_t>{1, 4}));
}

TEST(SchedulerTest, StarvingHeadGetsItsSlots) {
  const int64_t max_wait = 10 * kMinute;
  Scheduler s(Cluster({{"a", 2}, {"b", 2}}), Options(0.0, max_wait));
  ASSERT_TRUE(s.Reserve(Place(100, {{"a", 2}})).ok());
  ASSERT_TRUE(s.Reserve(Place(101, {{"b", 1}})).ok());
  const QueuedJob big = Job(1, 4, 5, 0);

  // Before max_wait: a small job backfills the free slot.
  EXPECT_EQ(Started(s.Schedule({big, Job(2, 1, 0, 0)}, max_wait - 1)), "2=b:1");
  s.Release(2);

  // From max_wait on, the free slot is held for the big job: new small jobs wait too.
  std::vector<QueuedJob> pending = {big, Job(3, 1, 0, max_wait), Job(4, 1, 0, max_wait)};
  EXPECT_TRUE(s.Schedule(pending, max_wait).empty());
  EXPECT_EQ(s.free_slots(), 1);
  s.Release(100);  // 3 free: still not 4, still nothing
  EXPECT_TRUE(s.Schedule(pending, max_wait + kMinute).empty());
  EXPECT_EQ(s.free_slots(), 3);
  s.Release(101);  // 4 free: the big job runs, and the small ones follow when it is done
  EXPECT_EQ(Started(s.Schedule(pending, max_wait + 2 * kMinute)), "1=a:2,b:2");
  s.Release(1);
  pending.erase(pending.begin());
  EXPECT_EQ(Started(s.Schedule(pending, max_wait + 3 * kMinute)), "3=a:1;4=a:1");
}

TEST(SchedulerTest, ZeroMaxWaitMeansNoBackfill) {
  Scheduler s(Cluster({{"localhost", 4}}), Options(0.0, 0));
  ASSERT_TRUE(s.Reserve(Place(100, {{"localhost", 2}})).ok());
  EXPECT_TRUE(s.Schedule({Job(1, 4, 1, 0), Job(2, 1, 0, 0)}, 0).empty());
}

TEST(SchedulerTest, SkipsJobsThatCanNeverRunOrAreRunning) {
  Scheduler s(Cluster({{"localhost", 4}}), Options(0.0, 0));
  ASSERT_TRUE(s.Reserve(Place(7, {{"localhost", 1}})).ok());
  // Job 1 (5 ranks on a 4-slot cluster) and job 2 (0 ranks) can never run: they must not become
  // a starving head that blocks the queue. Job 7 is running already; id 3 is listed twice.
  std::vector<QueuedJob> pending = {Job(1, 5, 9, 0), Job(2, 0, 9, 0), Job(7, 4, 9, 0),
                                    Job(3, 1, 0, 0), Job(3, 1, 0, 0)};
  EXPECT_EQ(Started(s.Schedule(pending, kMinute)), "3=localhost:1");
  EXPECT_EQ(s.free_slots(), 2);
}

TEST(SchedulerTest, TenThousandJobsInOnePass) {
  std::vector<std::pair<std::string, int>> hosts;
  for (int i = 0; i < 64; ++i) hosts.emplace_back("n" + std::to_string(i), 8);
  Scheduler s(Cluster(hosts), NoAgingNoReservation());
  std::vector<QueuedJob> pending;
  for (int i = 0; i < 10000; ++i) pending.push_back(Job(i + 1, 1 + i % 8, i % 5, i));
  auto started = s.Schedule(pending, 10000);
  int ranks = 0;
  for (const Placement& p : started) {
    for (const auto& [host, count] : p.slots) ranks += count;
  }
  EXPECT_EQ(ranks, 512);
  EXPECT_EQ(s.free_slots(), 0);
}

// ----------------------------------------------------------------------------- properties

struct PropertyCase {
  const char* name;
  SchedulerOptions options;
  bool maximal;  // without reservations, a pass leaves no pending job that fits
};

class SchedulerPropertyTest : public ::testing::TestWithParam<PropertyCase> {};

TEST_P(SchedulerPropertyTest, SlotAccountingHoldsOverRandomSequences) {
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937 rng(seed);
    auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };

    std::vector<std::pair<std::string, int>> hosts;
    const int num_hosts = uniform(1, 6);
    for (int h = 0; h < num_hosts; ++h) hosts.emplace_back("h" + std::to_string(h), uniform(1, 8));
    const ClusterConfig cluster = Cluster(hosts);
    const int capacity = cluster.total_slots();
    Scheduler s(cluster, GetParam().options);

    std::vector<QueuedJob> pending;
    std::map<int64_t, Placement> running;  // as Schedule returned them
    std::set<int64_t> ever_started;
    int64_t next_id = 1;
    int64_t now = 0;
    for (int step = 0; step < 300; ++step) {
      now += uniform(0, 3) * kMinute;
      for (int n = uniform(0, 4); n > 0; --n) {
        pending.push_back(Job(next_id++, uniform(1, capacity), uniform(0, 3), now));
      }
      // Release a random subset of the running jobs.
      for (auto it = running.begin(); it != running.end();) {
        if (uniform(0, 2) == 0) {
          s.Release(it->first);
          it = running.erase(it);
        } else {
          ++it;
        }
      }
      std::vector<Placement> started = s.Schedule(pending, now);

      for (const Placement& p : started) {
        auto job = std::find_if(pending.begin(), pending.end(),
                                [&](const QueuedJob& j) { return j.id == p.job_id; });
        ASSERT_NE(job, pending.end()) << "started a job that was not pending: " << p.job_id;
        ASSERT_TRUE(ever_started.insert(p.job_id).second) << "job started twice: " << p.job_id;
        int total = 0;
        for (const auto& [host, count] : p.slots) {
          ASSERT_GT(count, 0) << p.ToString();
          total += count;
        }
        // Hosts appear once each, in host order.
        size_t h = 0;
        for (const auto& [host, count] : p.slots) {
          while (h < hosts.size() && hosts[h].first != host) ++h;
          ASSERT_LT(h, hosts.size()) << "unknown host or out of order: " << p.ToString();
          ++h;
        }
        ASSERT_EQ(total, job->ranks) << p.ToString();
        running.emplace(p.job_id, p);
        pending.erase(job);
      }

      // The slots the returned placements hold, per host, are exactly what the scheduler counts
      // as used, and never more than a host has.
      std::map<std::string, int> used;
      int used_total = 0;
      for (const auto& [id, placement] : running) {
        for (const auto& [host, count] : placement.slots) {
          used[host] += count;
          used_total += count;
        }
      }
      ASSERT_EQ(s.used_slots(), used_total);
      ASSERT_LE(s.used_slots(), capacity);
      ASSERT_EQ(s.free_slots(), capacity - used_total);
      auto free_by_host = s.FreeByHost();
      for (size_t h = 0; h < hosts.size(); ++h) {
        ASSERT_EQ(free_by_host[h].first, hosts[h].first);
        ASSERT_EQ(free_by_host[h].second, hosts[h].second - used[hosts[h].first]);
        ASSERT_GE(free_by_host[h].second, 0);
        ASSERT_LE(used[hosts[h].first], hosts[h].second);
      }
      if (GetParam().maximal) {
        for (const QueuedJob& j : pending) ASSERT_GT(j.ranks, s.free_slots()) << "job " << j.id;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Options, SchedulerPropertyTest,
    ::testing::Values(PropertyCase{"WithReservation", Options(1.0, 5 * kMinute), false},
                      PropertyCase{"BackfillOnly", Options(0.5, INT64_MAX), true}),
    [](const ::testing::TestParamInfo<PropertyCase>& info) { return info.param.name; });

}  // namespace
}  // namespace dtrain::coordinator
