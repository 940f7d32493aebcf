// The coordinator's cluster file (`dtrain coordinator --cluster cluster.yaml`):
//
//   hosts:                       # the slots jobs are placed on (static capacity)
//     - {name: node-a, slots: 8}
//   launcher:                    # optional: which backend runs jobs, and its settings
//     backend: local-mpirun
//     mpirun: /usr/bin/mpirun
//
// `hosts` is required unless a `launcher` section is given (then it defaults to this machine,
// or the backend supplies capacity itself). Errors carry "<source>:line:column: field: expected
// ..." like job specs, every problem of the file at once.
#ifndef DTRAIN_RUNTIME_COORDINATOR_CLUSTER_FILE_H_
#define DTRAIN_RUNTIME_COORDINATOR_CLUSTER_FILE_H_

#include <map>
#include <optional>
#include <string>

#include "runtime/common/status.h"
#include "runtime/coordinator/capacity.h"

namespace dtrain::coordinator {

// A setting and where it was given, so that a backend that refuses it can say where it came
// from: "cluster.yaml:6:11" for the file, "--mpirun" for a command-line flag.
struct ConfigValue {
  std::string value;
  std::string origin;
};

// Which launcher backend to use and its settings. The file only checks the shape (a map of
// scalars); the backend's registry checks the names and values (launchers/registry.h).
struct LauncherConfig {
  std::optional<ConfigValue> backend;           // unset: the default backend
  std::map<std::string, ConfigValue> settings;  // every other field of the section, by name
};

struct ClusterFile {
  std::optional<ClusterConfig> hosts;  // unset when the file has no `hosts`
  LauncherConfig launcher;
};

StatusOr<ClusterFile> ParseClusterFile(const std::string& yaml_text,
                                       const std::string& source_name);

}  // namespace dtrain::coordinator

#endif  // DTRAIN_RUNTIME_COORDINATOR_CLUSTER_FILE_H_
