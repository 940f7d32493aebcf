// The launcher backends the coordinator can be configured with, by name. A backend is one file
// pair in runtime/coordinator/launchers/ plus one line in registry.cc's list; the coordinator
// picks it by name (`launcher: {backend: NAME}` in the cluster file or `--launcher NAME`) and
// nothing else (store, supervisor, service) learns which one runs a job.
#ifndef DTRAIN_RUNTIME_COORDINATOR_LAUNCHERS_REGISTRY_H_
#define DTRAIN_RUNTIME_COORDINATOR_LAUNCHERS_REGISTRY_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runtime/common/status.h"
#include "runtime/coordinator/capacity.h"
#include "runtime/coordinator/cluster_file.h"
#include "runtime/coordinator/launcher.h"

namespace dtrain::coordinator {

inline constexpr char kDefaultLauncher[] = "local-mpirun";

// What the coordinator knows that any backend may use, besides its own settings.
struct LauncherEnvironment {
  // Where dtrain's own programs are (the directory of the running `dtrain`): the default home of
  // dtrain-worker and dtrain-job-shim.
  std::string tools_dir;
  // The hosts configured in the cluster file, or this machine when it lists none.
  ClusterConfig hosts;
};

// A backend's settings by name, already checked against the names it declares.
using LauncherSettings = std::map<std::string, ConfigValue>;

// A configured backend: its launcher and the capacity the scheduler places jobs within (the
// configured hosts, or what the backend learns from its cluster). Neither is null.
struct LauncherBackend {
  std::unique_ptr<Launcher> launcher;
  std::unique_ptr<CapacityProvider> capacity;
};

struct LauncherRegistration {
  const char* name;                   // as configured and as stored with every job it launches
  std::vector<std::string> settings;  // the setting names it takes
  // Builds the backend; errors name the setting and where it was given (ConfigValue::origin).
  StatusOr<LauncherBackend> (*make)(const LauncherSettings& settings,
                                    const LauncherEnvironment& environment);
};

// Every backend, in registration order.
const std::vector<LauncherRegistration>& RegisteredLaunchers();

// Builds the configured backend (kDefaultLauncher when `config` names none). An unknown backend
// is INVALID_ARGUMENT listing the registered ones; a setting the backend does not take is
// INVALID_ARGUMENT listing the ones it does. Every such problem is reported at once.
StatusOr<LauncherBackend> MakeLauncher(const LauncherConfig& config,
                                       const LauncherEnvironment& environment);

}  // namespace dtrain::coordinator

#endif  // DTRAIN_RUNTIME_COORDINATOR_LAUNCHERS_REGISTRY_H_
