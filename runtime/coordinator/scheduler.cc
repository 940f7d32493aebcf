// The gang scheduler.
//
// A pass sorts the pending jobs once (O(n log n)) and walks them in start order. Since slots may
// span hosts, a job fits exactly when its ranks do not exceed the cluster's free slots, so the
// fit test is O(1); choosing hosts (O(hosts log hosts)) happens only for jobs that start, and
// every start consumes at least one slot, so a pass does at most free_slots() placements. A job
// that avoids hosts costs O(hosts) more (its masked copy of the free slots).
#include "runtime/coordinator/scheduler.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

namespace dtrain::coordinator {

namespace {

constexpr double kMsPerMinute = 60.0 * 1000.0;
constexpr size_t kMaxHostsInMessage = 8;  // CanEverFit names at most this many hosts

// "a:4,b:2", or "a:4,...,h:4 and 56 more hosts" for big clusters.
std::string DescribeHosts(const std::vector<Host>& hosts) {
  std::string out;
  for (size_t i = 0; i < hosts.size() && i < kMaxHostsInMessage; ++i) {
    if (i > 0) out += ',';
    out += hosts[i].name + ":" + std::to_string(hosts[i].slots);
  }
  if (hosts.size() > kMaxHostsInMessage) {
    out += " and " + std::to_string(hosts.size() - kMaxHostsInMessage) + " more hosts";
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Scheduling.

// A pending job's sort key; `index` points back into the caller's vector.
struct Candidate {
  double effective_priority;
  int64_t submitted_ms;
  int64_t id;
  size_t index;
};

// Start order: higher effective priority first, then FIFO (submission time, then id).
bool StartsBefore(const Candidate& a, const Candidate& b) {
  if (a.effective_priority != b.effective_priority) {
    return a.effective_priority > b.effective_priority;
  }
  if (a.submitted_ms != b.submitted_ms) return a.submitted_ms < b.submitted_ms;
  return a.id < b.id;
}

// Waiting time in ms; computed in double so that no pair of int64 values overflows.
double WaitedMs(int64_t now_ms, int64_t submitted_ms) {
  return std::max(0.0, static_cast<double>(now_ms) - static_cast<double>(submitted_ms));
}

// A broken slot invariant means the scheduler would launch more ranks than a host has: stop
// rather than over-commit.
[[noreturn]] void InvariantBroken(const std::string& what) {
  std::fprintf(stderr, "dtrain scheduler invariant broken: %s\n", what.c_str());
  std::abort();
}

// Chooses hosts for `ranks` slots given the free slots per host (their sum must be >= ranks);
// returns them in `take` as (host index, count), in host order. `by_free` is scratch space.
void PlaceOnFreeSlots(const std::vector<int>& free, int ranks, std::vector<size_t>* by_free,
                      std::vector<std::pair<size_t, int>>* take) {
  take->clear();
  // One host holds it: the tightest one (fewest free slots that suffice, then host order), which
  // keeps big free blocks for big jobs.
  size_t best = free.size();
  for (size_t h = 0; h < free.size(); ++h) {
    if (free[h] >= ranks && (best == free.size() || free[h] < free[best])) best = h;
  }
  if (best != free.size()) {
    take->emplace_back(best, ranks);
    return;
  }
  // Otherwise the fewest hosts: whole hosts with the most free slots first (then host order),
  // and the remainder on the tightest of the other hosts that holds it.
  std::vector<size_t>& order = *by_free;
  order.clear();
  for (size_t h = 0; h < free.size(); ++h) {
    if (free[h] > 0) order.push_back(h);
  }
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return free[a] != free[b] ? free[a] > free[b] : a < b; });
  int remaining = ranks;
  size_t next = 0;
  while (next < order.size() && free[order[next]] < remaining) {  // the next host can't finish it
    take->emplace_back(order[next], free[order[next]]);
    remaining -= free[order[next]];
    ++next;
  }
  if (next == order.size()) {
    InvariantBroken("placing " + std::to_string(ranks) + " ranks on fewer free slots");
  }
  // `order` is descending from `next` on: the tightest host that holds the remainder is the
  // first of the last run of equal counts that are still >= remaining.
  size_t tightest = next;
  for (size_t i = next + 1; i < order.size() && free[order[i]] >= remaining; ++i) {
    if (free[order[i]] < free[order[tightest]]) tightest = i;
  }
  take->emplace_back(order[tightest], remaining);
  std::sort(take->begin(), take->end());  // placements list hosts in host order
}

}  // namespace

std::string Placement::ToString() const {
  std::string out;
  for (const auto& [host, count] : slots) {
    if (!out.empty()) out += ',';
    out += host + ":" + std::to_string(count);
  }
  return out;
}

Scheduler::Scheduler(ClusterConfig cluster, SchedulerOptions options)
    : cluster_(std::move(cluster)), options_(options) {
  // A NaN rate would make the start order inconsistent (and std::sort undefined).
  if (!std::isfinite(options_.aging_per_minute)) options_.aging_per_minute = 0.0;
  free_.reserve(cluster_.hosts.size());
  for (const Host& h : cluster_.hosts) free_.push_back(std::max(0, h.slots));
}

StatusOr<std::unique_ptr<Scheduler>> Scheduler::FromCapacity(const CapacityProvider& capacity,
                                                             SchedulerOptions options) {
  DTRAIN_ASSIGN_OR_RETURN(ClusterConfig cluster, capacity.Capacity());
  if (cluster.total_slots() < 1) {
    return FailedPrecondition("the cluster has no slots (" + DescribeHosts(cluster.hosts) + ")");
  }
  return std::make_unique<Scheduler>(std::move(cluster), options);
}

Status Scheduler::CanEverFit(int ranks) const {
  if (ranks < 1) return InvalidArgument("job needs at least 1 slot, got " + std::to_string(ranks));
  const int total = cluster_.total_slots();
  if (ranks <= total) return Status::Ok();
  return FailedPrecondition("job needs " + std::to_string(ranks) + " slots, the cluster has " +
                            std::to_string(total) + " (" + DescribeHosts(cluster_.hosts) + ")");
}

Status Scheduler::Reserve(const Placement& placement) {
  const std::string job = "job " + std::to_string(placement.job_id);
  if (running_.count(placement.job_id) != 0) {
    return Status(StatusCode::kAlreadyExists,
                  job + " already holds slots (" + running_[placement.job_id].ToString() + ")");
  }
  if (placement.slots.empty()) return InvalidArgument("placement for " + job + " has no slots");
  // Validate everything before touching free_, so a failed Reserve changes nothing.
  std::vector<int64_t> take(cluster_.hosts.size(), 0);
  for (const auto& [name, count] : placement.slots) {
    size_t h = 0;
    while (h < cluster_.hosts.size() && cluster_.hosts[h].name != name) ++h;
    if (h == cluster_.hosts.size()) {
      return InvalidArgument("placement " + placement.ToString() + " for " + job +
                             " names unknown host '" + name +
                             "' (cluster: " + DescribeHosts(cluster_.hosts) + ")");
    }
    if (count < 1) {
      return InvalidArgument("placement " + placement.ToString() + " for " + job + " gives host '" +
                             name + "' " + std::to_string(count) + " slots; expected >= 1");
    }
    take[h] += count;
  }
  for (size_t h = 0; h < take.size(); ++h) {
    if (take[h] > free_[h]) {
      return FailedPrecondition("placement " + placement.ToString() + " for " + job +
                                " does not fit: host '" + cluster_.hosts[h].name + "' has " +
                                std::to_string(free_[h]) + " free of " +
                                std::to_string(cluster_.hosts[h].slots) + " slots");
    }
  }
  // Stored normalised (host order, one entry per host) so that Release can walk it in order.
  Placement stored;
  stored.job_id = placement.job_id;
  for (size_t h = 0; h < take.size(); ++h) {
    if (take[h] == 0) continue;
    free_[h] -= static_cast<int>(take[h]);
    stored.slots.emplace_back(cluster_.hosts[h].name, static_cast<int>(take[h]));
  }
  running_.emplace(placement.job_id, std::move(stored));
  return Status::Ok();
}

void Scheduler::Release(int64_t job_id) {
  auto it = running_.find(job_id);
  if (it == running_.end()) return;
  // Placements in running_ are in host order: one walk over the hosts gives every entry back.
  size_t h = 0;
  for (const auto& [name, count] : it->second.slots) {
    while (h < cluster_.hosts.size() && cluster_.hosts[h].name != name) ++h;
    if (h == cluster_.hosts.size()) {
      InvariantBroken("job " + std::to_string(job_id) + " holds '" + name +
                      "', not a host in order");
    }
    free_[h] += count;
    if (free_[h] > cluster_.hosts[h].slots) {
      InvariantBroken("host '" + name + "' would have " + std::to_string(free_[h]) + " free of " +
                      std::to_string(cluster_.hosts[h].slots) + " slots");
    }
    ++h;
  }
  running_.erase(it);
}

std::vector<Placement> Scheduler::Schedule(const std::vector<QueuedJob>& pending, int64_t now_ms) {
  std::vector<Placement> started;
  int free_total = free_slots();
  if (free_total == 0 || pending.empty()) return started;
  const int capacity = cluster_.total_slots();

  // Jobs that can never run (CanEverFit should have rejected them) are left out, or they would
  // become a head that blocks the queue forever.
  std::vector<Candidate> order;
  order.reserve(pending.size());
  for (size_t i = 0; i < pending.size(); ++i) {
    const QueuedJob& job = pending[i];
    // Held or waiting for a dependency: not a candidate, so never the head either.
    if (job.ranks < 1 || job.ranks > capacity || !job.blocked.empty()) continue;
    const double aging =
        options_.aging_per_minute * WaitedMs(now_ms, job.submitted_ms) / kMsPerMinute;
    order.push_back({job.priority + aging, job.submitted_ms, job.id, i});
  }
  std::sort(order.begin(), order.end(), StartsBefore);

  std::vector<size_t> hosts_scratch;  // reused by every placement of this pass
  hosts_scratch.reserve(cluster_.hosts.size());
  std::vector<std::pair<size_t, int>> take;
  take.reserve(cluster_.hosts.size());
  std::vector<int> masked;  // FreeFor's scratch
  bool head_seen = false;
  for (const Candidate& c : order) {
    const QueuedJob& job = pending[c.index];
    if (running_.count(job.id) != 0) continue;  // already running (or started earlier this pass)
    const std::vector<int>& job_free = FreeFor(job, &masked);
    const int usable =
        &job_free == &free_ ? free_total : std::accumulate(job_free.begin(), job_free.end(), 0);
    if (job.ranks > usable) {
      // The first job that does not fit is the head. Until it has waited
      // max_wait_for_backfill_ms, later jobs may backfill; after that, its slots are reserved:
      // whatever frees up goes to it, so nothing behind it starts.
      if (!head_seen) {
        head_seen = true;
        if (WaitedMs(now_ms, job.submitted_ms) >=
            static_cast<double>(options_.max_wait_for_backfill_ms)) {
          break;
        }
      }
      continue;
    }
    PlaceOnFreeSlots(job_free, job.ranks, &hosts_scratch, &take);
    Placement placement;
    placement.job_id = job.id;
    placement.slots.reserve(take.size());
    int placed = 0;
    for (const auto& [h, count] : take) {
      if (count < 1 || count > free_[h]) {
        InvariantBroken("job " + std::to_string(job.id) + " would take " + std::to_string(count) +
                        " slots on host '" + cluster_.hosts[h].name + "' with " +
                        std::to_string(free_[h]) + " free");
      }
      free_[h] -= count;
      placed += count;
      placement.slots.emplace_back(cluster_.hosts[h].name, count);
    }
    if (placed != job.ranks) {
      InvariantBroken("job " + std::to_string(job.id) + " needs " + std::to_string(job.ranks) +
                      " slots, placed " + std::to_string(placed));
    }
    free_total -= job.ranks;
    running_.emplace(job.id, placement);
    started.push_back(std::move(placement));
    if (free_total == 0) break;
  }
  return started;
}

std::vector<int64_t> Scheduler::StartOrder(const std::vector<QueuedJob>& pending,
                                           int64_t now_ms) const {
  const int capacity = cluster_.total_slots();
  std::vector<Candidate> order;
  order.reserve(pending.size());
  for (size_t i = 0; i < pending.size(); ++i) {
    const QueuedJob& job = pending[i];
    // Held or waiting for a dependency: not a candidate, so never the head either.
    if (job.ranks < 1 || job.ranks > capacity || !job.blocked.empty()) continue;
    const double aging =
        options_.aging_per_minute * WaitedMs(now_ms, job.submitted_ms) / kMsPerMinute;
    order.push_back({job.priority + aging, job.submitted_ms, job.id, i});
  }
  std::sort(order.begin(), order.end(), StartsBefore);
  std::vector<int64_t> ids;
  ids.reserve(order.size());
  for (const Candidate& c : order) ids.push_back(c.id);
  return ids;
}

const std::vector<int>& Scheduler::FreeFor(const QueuedJob& job, std::vector<int>* masked) const {
  if (job.avoid_hosts.empty()) return free_;
  masked->assign(free_.begin(), free_.end());
  int elsewhere = 0;  // slots, busy or not, on the hosts the job may use
  for (size_t h = 0; h < cluster_.hosts.size(); ++h) {
    const std::string& name = cluster_.hosts[h].name;
    if (std::find(job.avoid_hosts.begin(), job.avoid_hosts.end(), name) != job.avoid_hosts.end()) {
      (*masked)[h] = 0;
    } else {
      elsewhere += std::max(0, cluster_.hosts[h].slots);
    }
  }
  // The other hosts can never hold the gang: the avoided ones are better than never running.
  return elsewhere >= job.ranks ? *masked : free_;
}

int Scheduler::free_slots() const {
  int total = 0;
  for (int f : free_) total += f;
  return total;
}

int Scheduler::used_slots() const { return cluster_.total_slots() - free_slots(); }

std::vector<std::pair<std::string, int>> Scheduler::FreeByHost() const {
  std::vector<std::pair<std::string, int>> out;
  out.reserve(free_.size());
  for (size_t h = 0; h < free_.size(); ++h) out.emplace_back(cluster_.hosts[h].name, free_[h]);
  return out;
}

}  // namespace dtrain::coordinator
