#include "runtime/coordinator/launchers/process.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
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

namespace {

// posix_spawn's two handles, destroyed on every path.
class SpawnSetup {
 public:
  SpawnSetup() {
    actions_ok_ = ::posix_spawn_file_actions_init(&actions_) == 0;
    attr_ok_ = ::posix_spawnattr_init(&attr_) == 0;
  }
  ~SpawnSetup() {
    if (actions_ok_) ::posix_spawn_file_actions_destroy(&actions_);
    if (attr_ok_) ::posix_spawnattr_destroy(&attr_);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;

  bool ok() const { return actions_ok_ && attr_ok_; }
  posix_spawn_file_actions_t* actions() { return &actions_; }
  posix_spawnattr_t* attr() { return &attr_; }

 private:
  posix_spawn_file_actions_t actions_;
  posix_spawnattr_t attr_;
  bool actions_ok_ = false;
  bool attr_ok_ = false;
};

}  // namespace

// posix_spawn rather than fork: glibc starts the child with CLONE_VM | CLONE_VFORK, so the
// coordinator's page tables are not copied and its gRPC threads do not take a copy-on-write
// fault (and a TLB shoot-down) on every page they touch afterwards; profiling showed that cost
// dominating a busy coordinator. glibc also reports an exec failure as the return value.
StatusOr<ProcessIdentity> Spawn(const SpawnOptions& options) {
  if (options.argv.empty()) return InvalidArgument("spawn: empty argv");
  const int out_fd =
      ::open(options.output_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (out_fd < 0) {
    return Internal("cannot open log '" + options.output_path + "': " + std::strerror(errno));
  }
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null_fd < 0) {
    const int e = errno;
    ::close(out_fd);
    return Internal(std::string("spawn: /dev/null: ") + std::strerror(e));
  }
  SpawnSetup setup;
  int rc = setup.ok() ? 0 : ENOMEM;
  // dup2 onto 0/1/2 clears close-on-exec there; every other descriptor of ours stays closed.
  if (rc == 0) rc = ::posix_spawn_file_actions_adddup2(setup.actions(), null_fd, STDIN_FILENO);
  if (rc == 0) rc = ::posix_spawn_file_actions_adddup2(setup.actions(), out_fd, STDOUT_FILENO);
  if (rc == 0) rc = ::posix_spawn_file_actions_adddup2(setup.actions(), out_fd, STDERR_FILENO);
  if (rc == 0 && !options.working_dir.empty()) {
    rc = ::posix_spawn_file_actions_addchdir_np(setup.actions(), options.working_dir.c_str());
  }
  // Signals the coordinator ignores or blocks must not leak into the job.
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  if (options.new_session) flags |= POSIX_SPAWN_SETSID;
  if (rc == 0) rc = ::posix_spawnattr_setsigmask(setup.attr(), &none);
  if (rc == 0) rc = ::posix_spawnattr_setsigdefault(setup.attr(), &all);
  if (rc == 0) rc = ::posix_spawnattr_setflags(setup.attr(), flags);
  if (rc != 0) {
    ::close(out_fd);
    ::close(null_fd);
    return Internal(std::string("spawn: ") + std::strerror(rc));
  }
  std::vector<char*> argv;
  for (const auto& a : options.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  rc = ::posix_spawn(&pid, argv[0], setup.actions(), setup.attr(), argv.data(), environ);
  ::close(out_fd);
  ::close(null_fd);
  if (rc != 0) {
    const std::string where = rc == ENOENT && !options.working_dir.empty() &&
                                      !std::filesystem::is_directory(options.working_dir)
                                  ? " (working directory '" + options.working_dir + "')"
                                  : "";
    return FailedPrecondition("cannot start '" + options.argv[0] + "'" + where + ": " +
                              std::strerror(rc));
  }
  auto start = ProcessStartTime(pid);
  return ProcessIdentity{pid, start.ok() ? *start : 0};
}

}  // namespace dtrain::coordinator
