#include "runtime/coordinator/capacity.h"

#include <algorithm>
#include <thread>

namespace dtrain::coordinator {
namespace {

constexpr const char* kDefaultHostName = "localhost";

}  // namespace

int ClusterConfig::total_slots() const {
  int total = 0;
  for (const Host& h : hosts) total += std::max(0, h.slots);
  return total;
}

ClusterConfig DefaultCluster() {
  ClusterConfig cluster;
  cluster.hosts.push_back(
      {kDefaultHostName, std::max(1, static_cast<int>(std::thread::hardware_concurrency()))});
  return cluster;
}

}  // namespace dtrain::coordinator
