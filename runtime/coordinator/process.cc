#include "runtime/coordinator/process.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

namespace dtrain::coordinator {
namespace {

struct StatFields {
  char state = '?';
  int64_t ppid = 0;
  int64_t pgid = 0;
  int64_t start_time = 0;
};

// Parses /proc/<pid>/stat; the command name (field 2) may hold spaces and parentheses, so
// fields are counted from the last ')'.
bool ReadStat(int64_t pid, StatFields* out) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return false;
  const size_t close = line.rfind(')');
  if (close == std::string::npos) return false;
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  std::vector<std::string> f;  // f[0] is field 3 (state)
  while (rest >> field) f.push_back(field);
  if (f.size() < 20) return false;
  out->state = f[0][0];
  out->ppid = std::stoll(f[1]);
  out->pgid = std::stoll(f[2]);
  out->start_time = std::stoll(f[19]);  // field 22
  return true;
}

std::map<int64_t, StatFields> AllProcesses() {
  std::map<int64_t, StatFields> all;
  DIR* dir = ::opendir("/proc");
  if (dir == nullptr) return all;
  while (dirent* e = ::readdir(dir)) {
    char* end = nullptr;
    const long pid = std::strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0) continue;
    StatFields s;
    if (ReadStat(pid, &s)) all[pid] = s;
  }
  ::closedir(dir);
  return all;
}

std::vector<int64_t> DescendantsOf(int64_t root, const std::map<int64_t, StatFields>& all) {
  std::multimap<int64_t, int64_t> children;
  for (const auto& [pid, s] : all) children.emplace(s.ppid, pid);
  std::vector<int64_t> out, stack = {root};
  while (!stack.empty()) {
    const int64_t p = stack.back();
    stack.pop_back();
    auto range = children.equal_range(p);
    for (auto it = range.first; it != range.second; ++it) {
      if (all.at(it->second).state != 'Z') out.push_back(it->second);
      stack.push_back(it->second);
    }
  }
  return out;
}

}  // namespace

StatusOr<int64_t> ProcessStartTime(int64_t pid) {
  StatFields s;
  if (!ReadStat(pid, &s)) return NotFound("no process " + std::to_string(pid));
  return s.start_time;
}

bool IsAlive(const ProcessIdentity& process) {
  StatFields s;
  if (!ReadStat(process.pid, &s)) return false;
  return s.state != 'Z' && s.state != 'X' && s.start_time == process.start_time;
}

std::vector<int64_t> Descendants(int64_t pid) { return DescendantsOf(pid, AllProcesses()); }

void SignalTree(int64_t pid, int signal) {
  auto all = AllProcesses();
  std::vector<int64_t> targets = DescendantsOf(pid, all);
  targets.push_back(pid);
  for (int64_t p : targets) {
    auto it = all.find(p);
    if (it != all.end() && it->second.pgid > 1 && it->second.pgid != ::getpgrp()) {
      ::kill(-static_cast<pid_t>(it->second.pgid), signal);
    }
    ::kill(static_cast<pid_t>(p), signal);
  }
}

Status KillTree(int64_t pid, std::chrono::milliseconds grace) {
  // Remember the whole tree first: once the root dies its children are re-parented to init and
  // can no longer be found through it.
  std::vector<int64_t> tree = Descendants(pid);
  tree.push_back(pid);
  std::vector<ProcessIdentity> members;
  for (int64_t p : tree) {
    auto t = ProcessStartTime(p);
    if (t.ok()) members.push_back({p, *t});
  }
  auto alive = [&] {
    std::vector<ProcessIdentity> left;
    for (const auto& m : members) {
      // Reap our own zombie children so they stop counting as alive.
      ::waitpid(static_cast<pid_t>(m.pid), nullptr, WNOHANG);
      if (IsAlive(m)) left.push_back(m);
    }
    return left;
  };
  SignalTree(pid, SIGTERM);
  for (const auto& m : members) ::kill(static_cast<pid_t>(m.pid), SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (!alive().empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (int attempt = 0; attempt < 50; ++attempt) {
    std::vector<ProcessIdentity> left = alive();
    if (left.empty()) return Status::Ok();
    for (const auto& m : left) {
      SignalTree(m.pid, SIGKILL);
      ::kill(static_cast<pid_t>(m.pid), SIGKILL);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::string survivors;
  for (const auto& m : alive()) survivors += " " + std::to_string(m.pid);
  if (survivors.empty()) return Status::Ok();
  return DeadlineExceeded("processes survived SIGKILL:" + survivors);
}

StatusOr<ProcessIdentity> Spawn(const SpawnOptions& options) {
  if (options.argv.empty()) return InvalidArgument("spawn: empty argv");
  int out_fd = ::open(options.output_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (out_fd < 0) {
    return Internal("cannot open log '" + options.output_path + "': " + std::strerror(errno));
  }
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  int report[2];
  if (null_fd < 0 || ::pipe2(report, O_CLOEXEC) != 0) {
    ::close(out_fd);
    if (null_fd >= 0) ::close(null_fd);
    return Internal(std::string("spawn: ") + std::strerror(errno));
  }
  // Everything the child needs is prepared before fork: after it, only async-signal-safe calls.
  std::vector<char*> argv;
  for (const auto& a : options.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const char* cwd = options.working_dir.empty() ? nullptr : options.working_dir.c_str();

  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(out_fd);
    ::close(null_fd);
    ::close(report[0]);
    ::close(report[1]);
    return Internal(std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    if (options.new_session) ::setsid();
    ::dup2(null_fd, STDIN_FILENO);
    ::dup2(out_fd, STDOUT_FILENO);
    ::dup2(out_fd, STDERR_FILENO);
    // Signals the coordinator ignores or blocks must not leak into the job.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    if (cwd != nullptr && ::chdir(cwd) != 0) {
      int e = errno;
      (void)::write(report[1], &e, sizeof(e));
      ::_exit(127);
    }
    ::execv(argv[0], argv.data());
    int e = errno;
    (void)::write(report[1], &e, sizeof(e));
    ::_exit(127);
  }
  ::close(out_fd);
  ::close(null_fd);
  ::close(report[1]);
  int child_errno = 0;
  ssize_t n;
  do {
    n = ::read(report[0], &child_errno, sizeof(child_errno));
  } while (n < 0 && errno == EINTR);
  ::close(report[0]);
  if (n == sizeof(child_errno)) {
    ::waitpid(pid, nullptr, 0);
    return FailedPrecondition("cannot start '" + options.argv[0] +
                              "': " + std::strerror(child_errno));
  }
  auto start = ProcessStartTime(pid);
  return ProcessIdentity{pid, start.ok() ? *start : 0};
}

}  // namespace dtrain::coordinator
