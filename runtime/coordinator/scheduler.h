// Scheduler: gang-schedules jobs onto the cluster's worker slots. Pure logic (no clock, no I/O)
// so it is tested directly and a pass over 10,000 queued jobs stays in milliseconds.
//
// Rules:
//  - a job needs `ranks` slots and starts only when all of them are free at once (never a
//    partial start); slots may span hosts (mpirun hostfile);
//  - order: effective priority = priority + aging_per_minute * minutes waited, higher first,
//    FIFO (submission time, then id) within equal effective priority;
//  - backfill: when the head job does not fit, later jobs that fit may start, but only if they
//    would not delay the head forever: once the head has waited max_wait_for_backfill_ms, the
//    scheduler reserves slots for it and starts nothing else until it runs (no starvation);
//  - a blocked job (QueuedJob::blocked: held, or waiting for a dependency) never starts and never
//    becomes the head that backfill keeps slots for; it keeps its submission time, so once
//    unblocked it takes the place its priority and waiting time give it;
//  - a job asking for more slots than the cluster has is rejected at submit (CanEverFit);
//  - a retried job avoids the hosts its last attempt failed on (QueuedJob::avoid_hosts) when
//    the other hosts can hold its whole gang, waiting for their slots if need be; when they
//    cannot, it may use every host again (a lone bad host must not strand a job forever).
#ifndef DTRAIN_RUNTIME_COORDINATOR_SCHEDULER_H_
#define DTRAIN_RUNTIME_COORDINATOR_SCHEDULER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runtime/common/status.h"
#include "runtime/coordinator/capacity.h"

namespace dtrain::coordinator {

struct SchedulerOptions {
  double aging_per_minute = 1.0;  // priority points gained per minute of waiting
  int64_t max_wait_for_backfill_ms = 10 * 60 * 1000;  // then the head job gets a reservation
};

struct QueuedJob {
  int64_t id = 0;
  int ranks = 1;
  int priority = 0;
  int64_t submitted_ms = 0;
  // Hosts not to place this attempt on (where the last attempt's failing rank ran). Ignored
  // when the other hosts have fewer slots in total than `ranks`.
  std::vector<std::string> avoid_hosts = {};
  // Why the job may not start yet ("held by user", "waiting for job 7 to succeed"); "" when it
  // may. Set by the supervisor, which knows holds and the states of dependencies.
  std::string blocked = "";
};

// Slots of one job on each host, in host order.
struct Placement {
  int64_t job_id = 0;
  std::vector<std::pair<std::string, int>> slots;  // (host, count), count > 0
  std::string ToString() const;                    // "a:2,b:1"
};

class Scheduler {
 public:
  Scheduler(ClusterConfig cluster, SchedulerOptions options);
  // A scheduler over what `capacity` reports now. Capacity is read once: the slots of running
  // jobs are accounted against it, so a provider whose hosts change needs a new scheduler.
  static StatusOr<std::unique_ptr<Scheduler>> FromCapacity(const CapacityProvider& capacity,
                                                           SchedulerOptions options);

  // OK, or FAILED_PRECONDITION "job needs 8 slots, the cluster has 4 (hosts: ...)".
  Status CanEverFit(int ranks) const;

  // Marks slots used by a job already running (coordinator restart: re-attached jobs).
  // Fails when the placement does not fit the free slots.
  Status Reserve(const Placement& placement);
  // Frees a finished job's slots (no-op for unknown ids).
  void Release(int64_t job_id);

  // One pass: decides which of `pending` start now, reserves their slots and returns their
  // placements, in start order. `pending` need not be sorted.
  std::vector<Placement> Schedule(const std::vector<QueuedJob>& pending, int64_t now_ms);

  // The ids of `pending` in the order a pass would consider them (the start order above; jobs
  // that can never fit and blocked jobs are left out). Changes nothing.
  std::vector<int64_t> StartOrder(const std::vector<QueuedJob>& pending, int64_t now_ms) const;

  int free_slots() const;
  int used_slots() const;
  // Free slots per host, in host order.
  std::vector<std::pair<std::string, int>> FreeByHost() const;
  const ClusterConfig& cluster() const { return cluster_; }

 private:
  ClusterConfig cluster_;
  SchedulerOptions options_;
  // The free slots `job` may use now: free_ itself, or `masked` (a copy with its avoided hosts
  // at zero) when it avoids hosts and the others can hold its gang.
  const std::vector<int>& FreeFor(const QueuedJob& job, std::vector<int>* masked) const;

  std::vector<int> free_;                 // per host
  std::map<int64_t, Placement> running_;  // job id -> placement
};

}  // namespace dtrain::coordinator

#endif  // DTRAIN_RUNTIME_COORDINATOR_SCHEDULER_H_
