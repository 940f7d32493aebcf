// Scheduler: cluster YAML parsing and the gang scheduler itself.
//
// A pass sorts the pending jobs once (O(n log n)) and walks them in start order. Since slots may
// span hosts, a job fits exactly when its ranks do not exceed the cluster's free slots, so the
// fit test is O(1); choosing hosts (O(hosts log hosts)) happens only for jobs that start, and
// every start consumes at least one slot, so a pass does at most free_slots() placements.
#include "runtime/coordinator/scheduler.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "runtime/spec/yaml_values.h"

namespace dtrain::coordinator {

namespace {

using yaml_values::Describe;
using yaml_values::IsPlain;
using yaml_values::ParseInt64;
using yaml_values::Printable;

constexpr double kMsPerMinute = 60.0 * 1000.0;
constexpr size_t kMaxHostsInMessage = 8;  // CanEverFit names at most this many hosts
constexpr const char* kDefaultHostName = "localhost";

// ---------------------------------------------------------------------------------------------
// Cluster YAML. Same message shape as job specs: "<source>:line:column: path: what".

// Host names go into mpirun hostfiles and "a:2,b:1" placements: no spaces, ':' or ','.
bool IsValidHostName(const std::string& s) {
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
  });
}

// One walk over a cluster YAML tree that collects every problem.
class ClusterParser {
 public:
  explicit ClusterParser(std::string source) : problems_(std::move(source)) {}
  ClusterParser(const ClusterParser&) = delete;
  ClusterParser& operator=(const ClusterParser&) = delete;

  StatusOr<ClusterConfig> Parse(const std::string& text);

 private:
  // A field of a map: its value, the position to blame and its path ("hosts[1].slots").
  struct Value {
    YAML::Node node;
    YAML::Mark mark;
    std::string path;
  };

  void Error(const YAML::Mark& mark, const std::string& path, const std::string& what) {
    problems_.AddAt(mark, path, what);
  }
  void Expected(const Value& v, const std::string& expectation) {
    Error(v.mark, v.path, "expected " + expectation + ", got " + Describe(v.node));
  }
  // Reads a map whose fields are all required: non-scalar keys, unknown, duplicate and missing
  // fields are reported here; each known field's value goes to `read(index in names, value)`.
  template <typename Read>
  void ReadMap(const YAML::Node& map, const std::string& path,
               const std::vector<const char*>& names, Read read);
  void ReadHosts(const Value& v);
  void ReadHost(const Value& v);

  ClusterConfig cluster_;
  yaml_values::Problems problems_;
  std::vector<int> name_lines_;  // 1-based line of each host's name, parallel to cluster_.hosts
};

template <typename Read>
void ClusterParser::ReadMap(const YAML::Node& map, const std::string& path,
                            const std::vector<const char*>& names, Read read) {
  auto child_path = [&](const std::string& key) { return path.empty() ? key : path + "." + key; };
  std::vector<int> first_line(names.size(), 0);  // 1-based line of each field seen; 0 = absent
  // yaml-cpp's iterator hands out its pair through a temporary proxy: copy the nodes (cheap,
  // shared handles) rather than bind references to the proxy's members.
  for (auto it = map.begin(); it != map.end(); ++it) {
    const YAML::Node key = it->first;
    const YAML::Node value = it->second;
    if (!key.IsScalar()) {
      Error(key.Mark(), path, "expected field names, got " + Describe(key) + " as a key");
      continue;
    }
    const std::string& name = key.Scalar();
    const std::string field_path = child_path(name.empty() ? "''" : Printable(name));
    size_t index = 0;
    while (index < names.size() && name != names[index]) ++index;
    if (index == names.size()) {
      std::string what = "unknown field; expected one of: ";
      for (size_t i = 0; i < names.size(); ++i)
        what += (i == 0 ? "" : ", ") + std::string(names[i]);
      Error(key.Mark(), field_path, what);
      continue;
    }
    if (first_line[index] != 0) {
      Error(key.Mark(), field_path,
            "duplicate field (first given at line " + std::to_string(first_line[index]) + ")");
      continue;
    }
    first_line[index] = key.Mark().line + 1;
    // An empty value ("slots:") is marked where the next token starts; blame the key instead.
    read(index, Value{value, value.IsNull() ? key.Mark() : value.Mark(), field_path});
  }
  for (size_t i = 0; i < names.size(); ++i) {
    if (first_line[i] == 0) Error(map.Mark(), child_path(names[i]), "required field is missing");
  }
}

void ClusterParser::ReadHosts(const Value& v) {
  if (!v.node.IsSequence() || v.node.size() == 0) {
    Expected(v, "a non-empty list of hosts");
    return;
  }
  for (size_t i = 0; i < v.node.size(); ++i) {
    const YAML::Node item = v.node[i];
    ReadHost(
        Value{item, item.IsNull() ? v.mark : item.Mark(), v.path + "[" + std::to_string(i) + "]"});
  }
  long long total = 0;
  for (const Host& h : cluster_.hosts) total += h.slots;
  if (total > std::numeric_limits<int>::max()) {
    Error(v.mark, v.path,
          "expected at most " + std::to_string(std::numeric_limits<int>::max()) +
              " slots in total, got " + std::to_string(total));
  }
}

void ClusterParser::ReadHost(const Value& v) {
  if (!v.node.IsMap()) {
    Expected(v, "a map with 'name' and 'slots'");
    return;
  }
  Host host;
  bool ok = true;
  int name_line = 0;
  ReadMap(v.node, v.path, {"name", "slots"}, [&](size_t field, const Value& f) {
    if (field == 0) {
      if (!f.node.IsScalar() || !IsValidHostName(f.node.Scalar())) {
        Expected(f, "a host name of letters, digits, '_', '.' and '-'");
        ok = false;
        return;
      }
      const std::string& name = f.node.Scalar();
      for (size_t i = 0; i < cluster_.hosts.size(); ++i) {
        if (cluster_.hosts[i].name == name) {
          Error(f.mark, f.path,
                "duplicate host '" + Printable(name) + "' (first given at line " +
                    std::to_string(name_lines_[i]) + ")");
          ok = false;
          return;
        }
      }
      host.name = name;
      name_line = f.mark.line + 1;
      return;
    }
    long long value = 0;
    bool overflow = false;
    const int kMax = std::numeric_limits<int>::max();
    if (!IsPlain(f.node) || !ParseInt64(f.node.Scalar(), &value, &overflow)) {
      Expected(f, "an integer >= 1");
      ok = false;
    } else if (overflow || value > kMax) {
      Expected(f, "an integer in [1, " + std::to_string(kMax) + "]");
      ok = false;
    } else if (value < 1) {
      Expected(f, "an integer >= 1");
      ok = false;
    } else {
      host.slots = static_cast<int>(value);
    }
  });
  // A host missing a field was reported by ReadMap; it is kept out of the duplicate check.
  if (ok && !host.name.empty()) {
    cluster_.hosts.push_back(std::move(host));
    name_lines_.push_back(name_line);
  }
}

StatusOr<ClusterConfig> ClusterParser::Parse(const std::string& text) {
  const std::optional<YAML::Node> root =
      yaml_values::LoadSingleMap(text, "expected a map with 'hosts'", &problems_);
  if (root) ReadMap(*root, "", {"hosts"}, [&](size_t, const Value& f) { ReadHosts(f); });
  if (!problems_.empty()) return problems_.ToStatus();
  return std::move(cluster_);
}

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

StatusOr<ClusterConfig> ParseClusterConfig(const std::string& yaml_text,
                                           const std::string& source_name) {
  ClusterParser parser(source_name);
  return parser.Parse(yaml_text);
}

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
    if (job.ranks < 1 || job.ranks > capacity) continue;
    const double aging =
        options_.aging_per_minute * WaitedMs(now_ms, job.submitted_ms) / kMsPerMinute;
    order.push_back({job.priority + aging, job.submitted_ms, job.id, i});
  }
  std::sort(order.begin(), order.end(), StartsBefore);

  std::vector<size_t> hosts_scratch;  // reused by every placement of this pass
  hosts_scratch.reserve(cluster_.hosts.size());
  std::vector<std::pair<size_t, int>> take;
  take.reserve(cluster_.hosts.size());
  bool head_seen = false;
  for (const Candidate& c : order) {
    const QueuedJob& job = pending[c.index];
    if (running_.count(job.id) != 0) continue;  // already running (or started earlier this pass)
    if (job.ranks > free_total) {
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
    PlaceOnFreeSlots(free_, job.ranks, &hosts_scratch, &take);
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
