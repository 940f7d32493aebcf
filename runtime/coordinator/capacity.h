// Capacity: the hosts jobs may be placed on and how many ranks (slots) each holds. The scheduler
// gang-schedules within it; where it comes from is the launcher backend's business: a static
// host list for local mpirun (the cluster file's `hosts:`, or this machine), something the
// cluster reports for a Kubernetes backend.
#ifndef DTRAIN_RUNTIME_COORDINATOR_CAPACITY_H_
#define DTRAIN_RUNTIME_COORDINATOR_CAPACITY_H_

#include <string>
#include <vector>

#include "runtime/common/status.h"

namespace dtrain::coordinator {

struct Host {
  std::string name;  // as the launcher sees it ("localhost" for this machine)
  int slots = 1;
};

struct ClusterConfig {
  std::vector<Host> hosts;
  int total_slots() const;
};

// This machine with one slot per core (std::thread::hardware_concurrency, at least 1).
ClusterConfig DefaultCluster();

class CapacityProvider {
 public:
  virtual ~CapacityProvider() = default;
  // The hosts and their slots now. A provider that asks someone (an API server) may fail; the
  // error says whom it asked.
  virtual StatusOr<ClusterConfig> Capacity() const = 0;
};

// A fixed list of hosts: the cluster file's `hosts: [{name, slots}]`, or DefaultCluster().
class StaticHostList final : public CapacityProvider {
 public:
  explicit StaticHostList(ClusterConfig hosts) : hosts_(std::move(hosts)) {}
  StatusOr<ClusterConfig> Capacity() const override { return hosts_; }

 private:
  const ClusterConfig hosts_;
};

}  // namespace dtrain::coordinator

#endif  // DTRAIN_RUNTIME_COORDINATOR_CAPACITY_H_
