#include "runtime/coordinator/launchers/local_mpirun.h"

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "runtime/common/atomic_file.h"
#include "runtime/coordinator/launchers/output_files.h"

namespace dtrain::coordinator {
namespace {

namespace fs = std::filesystem;

constexpr size_t kTailBytes = 64 * 1024;  // output read to explain a failure
constexpr char kDefaultMpirun[] = "/usr/bin/mpirun";

// mpirun's --output-filename directory of an attempt.
std::string RanksDirOf(const LaunchRequest& request) {
  return (fs::path(request.attempt_dir) / "ranks").string();
}

StatusOr<LauncherBackend> MakeLocalMpirun(const LauncherSettings& settings,
                                          const LauncherEnvironment& environment) {
  LocalMpirunOptions options;
  options.allow_run_as_root = ::getuid() == 0;
  // No human progress: the coordinator shows the JSON progress events, and the human lines
  // repeated each of them in `dtrain logs` (issue 16 item 2). Errors are still printed.
  options.worker_args = {"--progress", "none"};
  const fs::path tools(environment.tools_dir);
  struct Program {
    const char* setting;
    std::string* path;
    std::string fallback;
  };
  const Program programs[] = {
      {"mpirun", &options.mpirun, kDefaultMpirun},
      {"worker", &options.worker, (tools / "dtrain-worker").string()},
      {"shim", &options.shim, (tools / "dtrain-job-shim").string()},
  };
  std::string problems;
  for (const Program& p : programs) {
    auto given = settings.find(p.setting);
    *p.path = given != settings.end() ? given->second.value : p.fallback;
    if (::access(p.path->c_str(), X_OK) == 0) continue;
    const std::string from = given != settings.end()
                                 ? "from " + given->second.origin
                                 : "the default; set it with --" + std::string(p.setting) +
                                       " or launcher." + p.setting + " in the cluster file";
    problems += (problems.empty() ? "" : "\n") + std::string("'") + *p.path +
                "' is not an executable file (" + p.setting + ", " + from + ")";
  }
  if (!problems.empty()) return NotFound(problems);
  LauncherBackend backend;
  backend.launcher = std::make_unique<LocalMpirunLauncher>(std::move(options));
  backend.capacity = std::make_unique<StaticHostList>(environment.hosts);
  return backend;
}

}  // namespace

std::string LocalJobHandle::Encode() const {
  nlohmann::json j = {
      {"pid", shim.pid}, {"start_time", shim.start_time}, {"log", log_path}, {"exit", exit_path}};
  if (!ranks_dir.empty()) j["ranks"] = ranks_dir;
  return j.dump();
}

StatusOr<LocalJobHandle> LocalJobHandle::Decode(const LaunchedJob& job) {
  const std::string what = "job handle '" + job.handle + "'";
  if (job.backend != LocalMpirunLauncher::kName) {
    return DataLoss(what + " belongs to launcher '" + job.backend + "', not '" +
                    LocalMpirunLauncher::kName + "'");
  }
  const nlohmann::json j = nlohmann::json::parse(job.handle, nullptr, /*allow_exceptions=*/false);
  auto integer = [&](const char* key) { return j.contains(key) && j[key].is_number_integer(); };
  auto text = [&](const char* key) {
    return j.contains(key) && j[key].is_string() && !j[key].get<std::string>().empty();
  };
  if (!j.is_object() || !integer("pid") || !integer("start_time") || !text("log") ||
      !text("exit")) {
    return DataLoss(what + " is not a " + LocalMpirunLauncher::kName +
                    " handle: expected a JSON object with integers 'pid' and 'start_time' and "
                    "paths 'log' and 'exit'");
  }
  LocalJobHandle h;
  h.shim = {j["pid"].get<int64_t>(), j["start_time"].get<int64_t>()};
  h.log_path = j["log"].get<std::string>();
  h.exit_path = j["exit"].get<std::string>();
  if (text("ranks")) h.ranks_dir = j["ranks"].get<std::string>();
  return h;
}

Status WriteExitFile(const std::string& path, int exit_code, int signal) {
  return WriteFileAtomically(path, std::to_string(exit_code) + " " + std::to_string(signal) + "\n",
                             kOwnerOnlyFileMode);
}

StatusOr<std::optional<std::pair<int, int>>> ReadExitFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::optional<std::pair<int, int>>();
  int code = 0, signal = 0;
  if (!(in >> code >> signal)) return DataLoss("exit file '" + path + "' is malformed");
  return std::optional<std::pair<int, int>>(std::make_pair(code, signal));
}

std::vector<std::string> LocalMpirunLauncher::BuildArgv(const LaunchRequest& request,
                                                        const std::string& hostfile,
                                                        const std::string& exit_path) const {
  int ranks = 0;
  for (const auto& [host, slots] : request.placement.slots) ranks += slots;
  std::vector<std::string> argv = {options_.shim, exit_path, options_.mpirun};
  if (options_.allow_run_as_root) argv.push_back("--allow-run-as-root");
  if (options_.oversubscribe) argv.push_back("--oversubscribe");
  argv.insert(argv.end(), {"--bind-to", "none", "--hostfile", hostfile});
  // Each rank's own output in files as well (mpirun still forwards it all to output.log).
  if (!request.attempt_dir.empty()) {
    argv.insert(argv.end(), {"--output-filename", RanksDirOf(request)});
  }
  argv.insert(argv.end(), {"-np", std::to_string(ranks), options_.worker, request.spec_path});
  if (request.resume) argv.push_back("--resume");
  argv.insert(argv.end(), options_.worker_args.begin(), options_.worker_args.end());
  return argv;
}

StatusOr<LaunchedJob> LocalMpirunLauncher::Launch(const LaunchRequest& request) {
  std::error_code ec;
  fs::create_directories(request.attempt_dir, ec);
  if (ec) return Internal("cannot create '" + request.attempt_dir + "': " + ec.message());
  const std::string hostfile = (fs::path(request.attempt_dir) / "hostfile").string();
  std::string hosts;
  for (const auto& [host, slots] : request.placement.slots) {
    hosts += host + " slots=" + std::to_string(slots) + "\n";
  }
  DTRAIN_RETURN_IF_ERROR(WriteFileAtomically(hostfile, hosts, kOwnerOnlyFileMode));
  LocalJobHandle handle;
  handle.log_path = (fs::path(request.attempt_dir) / "output.log").string();
  handle.exit_path = (fs::path(request.attempt_dir) / "exit").string();
  handle.ranks_dir = RanksDirOf(request);
  fs::remove(handle.exit_path, ec);
  SpawnOptions spawn;
  spawn.argv = BuildArgv(request, hostfile, handle.exit_path);
  spawn.output_path = handle.log_path;
  DTRAIN_ASSIGN_OR_RETURN(handle.shim, Spawn(spawn));
  return LaunchedJob{kName, handle.Encode()};
}

StatusOr<std::optional<ExitReport>> LocalMpirunLauncher::Poll(const LaunchedJob& job) {
  DTRAIN_ASSIGN_OR_RETURN(LocalJobHandle h, LocalJobHandle::Decode(job));
  // Reap the shim if this process started it (no-op for a job found again after a restart).
  ::waitpid(static_cast<pid_t>(h.shim.pid), nullptr, WNOHANG);
  DTRAIN_ASSIGN_OR_RETURN(auto exit, ReadExitFile(h.exit_path));
  if (!exit) {
    if (IsAlive(h.shim)) return std::optional<ExitReport>();
    // Re-check: the shim writes the file just before it exits.
    DTRAIN_ASSIGN_OR_RETURN(exit, ReadExitFile(h.exit_path));
    if (!exit) {
      ExitReport lost;
      lost.exit_code = -1;
      lost.lost = true;
      const std::string tail = ReadFileTail(h.log_path, kTailBytes);
      ExplainFailure(tail, &lost);
      lost.last_lines += "(the job's supervisor process " + std::to_string(h.shim.pid) +
                         " is gone without recording an exit status)\n";
      return std::optional<ExitReport>(lost);
    }
  }
  ExitReport report;
  report.exit_code = exit->first;
  report.signal = exit->second;
  const std::string tail = ReadFileTail(h.log_path, kTailBytes);
  ExplainFailure(tail, &report);
  return std::optional<ExitReport>(report);
}

StatusOr<LogChunk> LocalMpirunLauncher::ReadLog(const LaunchedJob& job, int64_t offset,
                                                size_t max_bytes) {
  DTRAIN_ASSIGN_OR_RETURN(LocalJobHandle h, LocalJobHandle::Decode(job));
  return ReadFileChunk(h.log_path, offset, max_bytes);
}

StatusOr<LogChunk> LocalMpirunLauncher::ReadRankLog(const LaunchedJob& job, int rank,
                                                    RankStream stream, int64_t offset,
                                                    size_t max_bytes) {
  DTRAIN_ASSIGN_OR_RETURN(LocalJobHandle h, LocalJobHandle::Decode(job));
  if (h.ranks_dir.empty()) {
    return FailedPrecondition(
        "this attempt was launched before dtrain kept per-rank logs; its combined output is in "
        "'" +
        h.log_path + "'");
  }
  const std::string path = RankOutputPath(h.ranks_dir, rank, stream);
  if (path.empty()) return LogChunk{"", offset};
  return ReadFileChunk(path, offset, max_bytes);
}

Status LocalMpirunLauncher::Stop(const LaunchedJob& job, std::chrono::milliseconds grace) {
  DTRAIN_ASSIGN_OR_RETURN(LocalJobHandle h, LocalJobHandle::Decode(job));
  if (!IsAlive(h.shim)) return Status::Ok();
  return KillTree(h.shim.pid, grace);
}

LauncherRegistration LocalMpirunRegistration() {
  return {LocalMpirunLauncher::kName, {"mpirun", "worker", "shim"}, &MakeLocalMpirun};
}

}  // namespace dtrain::coordinator
