// Scheduler pass latency: 10,000 queued jobs on a 64 x 8-slot cluster, timed over 50 passes.
// Each pass starts from the same state (a copy of the scheduler made outside the timed region),
// so every pass does the same work: sort the queue, then place whatever fits.
//
// Scenarios:
//   busy:  480 of 512 slots held by running jobs; mixed ranks and priorities submitted over the
//          last day, so the first job that does not fit has waited past
//          max_wait_for_backfill_ms and the pass stops there (reservation).
//   idle:  all 512 slots free; the pass starts jobs until the cluster is full or the head
//          starves.
//   scan:  32 slots free, every pending job needs more than that and none starves (no limit):
//          the pass walks the whole queue and starts nothing (worst case for the walk).
// p99 is nearest-rank over the 50 passes (so the slowest one).
// Budget: a pass under 10 ms. Exit status 1 when a median exceeds it.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "runtime/coordinator/scheduler.h"

namespace {

using dtrain::coordinator::ClusterConfig;
using dtrain::coordinator::Placement;
using dtrain::coordinator::QueuedJob;
using dtrain::coordinator::Scheduler;
using dtrain::coordinator::SchedulerOptions;

constexpr int kHosts = 64;
constexpr int kSlotsPerHost = 8;
constexpr int kQueuedJobs = 10000;
constexpr int kPasses = 50;
constexpr double kBudgetMs = 10.0;
constexpr int64_t kMinuteMs = 60 * 1000;
constexpr int64_t kNowMs = 24 * 60 * kMinuteMs;  // the queue was submitted over the last day
constexpr uint32_t kSeed = 42;

ClusterConfig MakeCluster() {
  ClusterConfig cluster;
  for (int h = 0; h < kHosts; ++h)
    cluster.hosts.push_back({"node" + std::to_string(h), kSlotsPerHost});
  return cluster;
}

// Fills `busy_slots` slots with 1..8-rank running jobs (ids from 1'000'000 on), host by host.
void OccupySlots(Scheduler* scheduler, int busy_slots, std::mt19937* rng) {
  int64_t id = 1000000;
  std::vector<int> free(kHosts, kSlotsPerHost);
  int host = 0;
  while (busy_slots > 0) {
    int ranks = std::min(busy_slots, std::uniform_int_distribution<int>(1, 8)(*rng));
    Placement p;
    p.job_id = id++;
    while (ranks > 0) {
      while (free[host] == 0) ++host;
      int take = std::min(ranks, free[host]);
      p.slots.emplace_back(scheduler->cluster().hosts[host].name, take);
      free[host] -= take;
      ranks -= take;
      busy_slots -= take;
    }
    dtrain::Status status = scheduler->Reserve(p);
    if (!status.ok()) {
      std::fprintf(stderr, "Reserve failed: %s\n", status.ToString().c_str());
      std::exit(2);
    }
  }
}

// Mixed ranks (mostly small, some whole-node and multi-node), priorities 0..9, submitted at
// random times over the last day.
std::vector<QueuedJob> MakeQueue(int min_ranks, std::mt19937* rng) {
  const int kRanks[] = {1, 1, 1, 2, 2, 4, 4, 8, 8, 16, 32, 64};
  std::vector<QueuedJob> queue;
  queue.reserve(kQueuedJobs);
  for (int i = 0; i < kQueuedJobs; ++i) {
    QueuedJob job;
    job.id = i + 1;
    job.ranks = std::max(min_ranks, kRanks[std::uniform_int_distribution<int>(0, 11)(*rng)]);
    job.priority = std::uniform_int_distribution<int>(0, 9)(*rng);
    job.submitted_ms = std::uniform_int_distribution<int64_t>(0, kNowMs)(*rng);
    queue.push_back(job);
  }
  return queue;
}

// Runs kPasses timed passes; returns false when the median exceeds the budget.
bool Run(const char* name, const Scheduler& initial, const std::vector<QueuedJob>& queue) {
  std::vector<double> ms;
  ms.reserve(kPasses);
  size_t started = 0;
  int started_ranks = 0;
  for (int pass = 0; pass < kPasses; ++pass) {
    Scheduler scheduler = initial;  // same starting state every pass, copied outside the timing
    auto t0 = std::chrono::steady_clock::now();
    std::vector<Placement> placements = scheduler.Schedule(queue, kNowMs);
    auto t1 = std::chrono::steady_clock::now();
    ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    started = placements.size();
    started_ranks = scheduler.used_slots() - initial.used_slots();
  }
  std::sort(ms.begin(), ms.end());
  const double median = ms[ms.size() / 2];
  const double p99 = ms[std::min(ms.size() - 1, (ms.size() * 99) / 100)];
  std::printf(
      "%-5s queued=%d free_slots=%3d started=%4zu jobs/%3d ranks  median=%7.3f ms  p99=%7.3f ms  "
      "max=%7.3f ms  %s\n",
      name, kQueuedJobs, initial.free_slots(), started, started_ranks, median, p99, ms.back(),
      median <= kBudgetMs ? "OK" : "OVER BUDGET");
  return median <= kBudgetMs;
}

}  // namespace

int main() {
  std::mt19937 rng(kSeed);
  SchedulerOptions options;  // 1 point per minute of aging, 10-minute backfill limit
  bool ok = true;
  std::printf("scheduler pass: %d hosts x %d slots, %d passes each, budget %.0f ms (median)\n",
              kHosts, kSlotsPerHost, kPasses, kBudgetMs);

  Scheduler busy(MakeCluster(), options);
  OccupySlots(&busy, 480, &rng);
  ok &= Run("busy", busy, MakeQueue(1, &rng));

  Scheduler idle(MakeCluster(), options);
  ok &= Run("idle", idle, MakeQueue(1, &rng));

  // No starvation limit and every job bigger than the 32 free slots: nothing starts, the whole
  // queue is walked.
  SchedulerOptions no_limit = options;
  no_limit.max_wait_for_backfill_ms = INT64_MAX;
  Scheduler scan(MakeCluster(), no_limit);
  OccupySlots(&scan, 480, &rng);
  ok &= Run("scan", scan, MakeQueue(64, &rng));
  return ok ? 0 : 1;
}
