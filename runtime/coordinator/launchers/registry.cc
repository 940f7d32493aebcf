#include "runtime/coordinator/launchers/registry.h"

#include <algorithm>

#include "runtime/coordinator/launchers/kubernetes.h"
#include "runtime/coordinator/launchers/local_mpirun.h"

namespace dtrain::coordinator {
namespace {

std::string Join(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// "cluster.yaml:6:3: launcher.mpirn" for the file, "--mpirun" for a flag.
std::string Where(const std::string& name, const ConfigValue& value) {
  if (value.origin.rfind("--", 0) == 0) return value.origin;
  return value.origin + ": launcher." + name;
}

}  // namespace

const std::vector<LauncherRegistration>& RegisteredLaunchers() {
  // One line per backend.
  static const std::vector<LauncherRegistration> kBackends = {
      LocalMpirunRegistration(),
      KubernetesRegistration(),
  };
  return kBackends;
}

StatusOr<LauncherBackend> MakeLauncher(const LauncherConfig& config,
                                       const LauncherEnvironment& environment) {
  const std::string name = config.backend ? config.backend->value : kDefaultLauncher;
  const std::vector<LauncherRegistration>& backends = RegisteredLaunchers();
  auto backend = std::find_if(backends.begin(), backends.end(),
                              [&](const LauncherRegistration& b) { return name == b.name; });
  if (backend == backends.end()) {
    std::vector<std::string> names;
    for (const LauncherRegistration& b : backends) names.push_back(b.name);
    const std::string where = config.backend ? Where("backend", *config.backend) : "launcher";
    return InvalidArgument(where + ": unknown launcher '" + name + "'; registered: " + Join(names));
  }
  std::string problems;
  for (const auto& [setting, value] : config.settings) {
    const std::vector<std::string>& known = backend->settings;
    if (std::find(known.begin(), known.end(), setting) != known.end()) continue;
    problems += (problems.empty() ? "" : "\n") + Where(setting, value) +
                ": not a setting of launcher '" + name + "'; " +
                (known.empty() ? "it takes none" : "it takes: " + Join(known));
  }
  if (!problems.empty()) return InvalidArgument(problems);
  DTRAIN_ASSIGN_OR_RETURN(LauncherBackend built, backend->make(config.settings, environment));
  if (built.launcher == nullptr || built.capacity == nullptr) {
    return Internal("launcher '" + name + "' was built without a launcher or a capacity");
  }
  return built;
}

}  // namespace dtrain::coordinator
