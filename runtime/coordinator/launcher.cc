#include "runtime/coordinator/launcher.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

namespace dtrain::coordinator {
namespace {

namespace fs = std::filesystem;

constexpr size_t kTailBytes = 64 * 1024;
constexpr int kLastLines = 20;

std::string ReadTail(const std::string& path, size_t bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  const std::streamoff start = size > static_cast<std::streamoff>(bytes) ? size - bytes : 0;
  in.seekg(start);
  std::string data(static_cast<size_t>(size - start), '\0');
  in.read(data.data(), static_cast<std::streamsize>(data.size()));
  return data;
}

}  // namespace

std::string ExitReport::Describe() const {
  std::string s;
  if (failing_rank >= 0) {
    s = "rank " + std::to_string(failing_rank) + " exited with code " +
        std::to_string(rank_exit_code);
    if (signal != 0) s += "; mpirun killed by signal " + std::to_string(signal);
    return s;
  }
  if (signal != 0) return "mpirun killed by signal " + std::to_string(signal);
  return "mpirun exited with code " + std::to_string(exit_code);
}

void ExplainFailure(const std::string& output_tail, ExitReport* report) {
  std::istringstream in(output_tail);
  std::string line;
  std::vector<std::string> plain;
  static const std::regex kWorkerFailed(
      R"re("event":"failed".*"exit_code":(-?\d+).*"rank":(\d+))re");
  static const std::regex kMpiProcess(R"re(Process name:\s*\[\[\d+,\d+\],(\d+)\])re");
  static const std::regex kMpiExit(R"re(Exit code:\s*(-?\d+))re");
  int mpi_rank = -1, mpi_exit = 0;
  bool from_worker = false;
  std::smatch m;
  while (std::getline(in, line)) {
    if (!line.empty() && line.front() == '{') {
      if (!from_worker && std::regex_search(line, m, kWorkerFailed)) {
        report->rank_exit_code = std::stoi(m[1]);
        report->failing_rank = std::stoi(m[2]);
        from_worker = true;
      }
      continue;
    }
    plain.push_back(line);
    if (mpi_rank < 0 && std::regex_search(line, m, kMpiProcess)) mpi_rank = std::stoi(m[1]);
    if (mpi_rank >= 0 && mpi_exit == 0 && std::regex_search(line, m, kMpiExit)) {
      mpi_exit = std::stoi(m[1]);
    }
  }
  if (!from_worker && mpi_rank >= 0) {
    report->failing_rank = mpi_rank;
    report->rank_exit_code = mpi_exit;
  }
  const size_t first = plain.size() > kLastLines ? plain.size() - kLastLines : 0;
  report->last_lines.clear();
  for (size_t i = first; i < plain.size(); ++i) report->last_lines += plain[i] + "\n";
}

Status WriteExitFile(const std::string& path, int exit_code, int signal) {
  const std::string tmp = path + ".tmp";
  const std::string text = std::to_string(exit_code) + " " + std::to_string(signal) + "\n";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Internal("cannot write '" + tmp + "': " + std::strerror(errno));
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ok = ::fsync(fd) == 0 && ok;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    return Internal("cannot write '" + path + "': " + std::strerror(errno));
  }
  return Status::Ok();
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
  argv.insert(argv.end(), {"--bind-to", "none", "--hostfile", hostfile, "-np",
                           std::to_string(ranks), options_.worker, request.spec_path});
  if (request.resume) argv.push_back("--resume");
  argv.insert(argv.end(), options_.worker_args.begin(), options_.worker_args.end());
  return argv;
}

StatusOr<LaunchedJob> LocalMpirunLauncher::Launch(const LaunchRequest& request) {
  std::error_code ec;
  fs::create_directories(request.attempt_dir, ec);
  if (ec) return Internal("cannot create '" + request.attempt_dir + "': " + ec.message());
  const std::string hostfile = (fs::path(request.attempt_dir) / "hostfile").string();
  {
    std::ofstream out(hostfile);
    for (const auto& [host, slots] : request.placement.slots) {
      out << host << " slots=" << slots << "\n";
    }
    if (!out) return Internal("cannot write '" + hostfile + "'");
  }
  LaunchedJob job;
  job.log_path = (fs::path(request.attempt_dir) / "output.log").string();
  job.exit_path = (fs::path(request.attempt_dir) / "exit").string();
  fs::remove(job.exit_path, ec);
  SpawnOptions spawn;
  spawn.argv = BuildArgv(request, hostfile, job.exit_path);
  spawn.output_path = job.log_path;
  DTRAIN_ASSIGN_OR_RETURN(job.shim, Spawn(spawn));
  return job;
}

StatusOr<std::optional<ExitReport>> LocalMpirunLauncher::Poll(const LaunchedJob& job) {
  // Reap the shim if this process started it (no-op for a job found again after a restart).
  ::waitpid(static_cast<pid_t>(job.shim.pid), nullptr, WNOHANG);
  DTRAIN_ASSIGN_OR_RETURN(auto exit, ReadExitFile(job.exit_path));
  if (!exit) {
    if (IsAlive(job.shim)) return std::optional<ExitReport>();
    // Re-check: the shim writes the file just before it exits.
    DTRAIN_ASSIGN_OR_RETURN(exit, ReadExitFile(job.exit_path));
    if (!exit) {
      ExitReport lost;
      lost.exit_code = -1;
      ExplainFailure(ReadTail(job.log_path, kTailBytes), &lost);
      lost.last_lines += "(the job's supervisor process " + std::to_string(job.shim.pid) +
                         " is gone without recording an exit status)\n";
      return std::optional<ExitReport>(lost);
    }
  }
  ExitReport report;
  report.exit_code = exit->first;
  report.signal = exit->second;
  ExplainFailure(ReadTail(job.log_path, kTailBytes), &report);
  return std::optional<ExitReport>(report);
}

Status LocalMpirunLauncher::Stop(const LaunchedJob& job, std::chrono::milliseconds grace) {
  if (!IsAlive(job.shim)) return Status::Ok();
  return KillTree(job.shim.pid, grace);
}

}  // namespace dtrain::coordinator
