// Process-tree utilities for the local mpirun launcher (Linux /proc). No shell is ever involved:
// programs are started by posix_spawn with an argv list, so no value from a spec can inject a
// command.
#ifndef DTRAIN_RUNTIME_COORDINATOR_LAUNCHERS_PROCESS_H_
#define DTRAIN_RUNTIME_COORDINATOR_LAUNCHERS_PROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/common/status.h"

namespace dtrain::coordinator {

// A pid alone can be reused after the process ends; pid + kernel start time cannot.
struct ProcessIdentity {
  int64_t pid = 0;
  int64_t start_time = 0;  // /proc/<pid>/stat field 22 (clock ticks since boot)
};

// Start time of a live process; NOT_FOUND when there is none.
StatusOr<int64_t> ProcessStartTime(int64_t pid);
// True while the identified process exists and is not a zombie.
bool IsAlive(const ProcessIdentity& process);
// All live descendants of `pid` (children, grandchildren, ...), found via /proc parent links.
std::vector<int64_t> Descendants(int64_t pid);

// Sends `signal` to the process, every descendant, and their process groups, so ranks that
// moved into their own process group (OpenMPI does that) are reached too.
void SignalTree(int64_t pid, int signal);

// Ends a process tree: SIGTERM, then SIGKILL to whatever is left after `grace`. Returns once
// nothing of the tree is alive, or DEADLINE_EXCEEDED naming the survivors.
Status KillTree(int64_t pid, std::chrono::milliseconds grace);

struct SpawnOptions {
  std::vector<std::string> argv;  // argv[0] is the program path (no PATH search)
  std::string output_path;        // stdout and stderr are appended here
  std::string working_dir;        // "" = inherit
  bool new_session = true;        // setsid(): own session and process group
};

// posix_spawn (no PATH search). The child has stdin on /dev/null. Returns its identity; an exec
// failure is reported as an error, not as a mystery exit.
StatusOr<ProcessIdentity> Spawn(const SpawnOptions& options);

}  // namespace dtrain::coordinator

#endif  // DTRAIN_RUNTIME_COORDINATOR_LAUNCHERS_PROCESS_H_
