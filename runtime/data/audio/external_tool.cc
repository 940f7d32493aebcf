#include "runtime/data/audio/external_tool.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

extern char** environ;

namespace dtrain::data {

Status RunExternalTool(const std::vector<std::string>& argv, const std::string& package) {
  if (argv.empty()) return InvalidArgument("no program to run");
  std::string line;
  for (const std::string& a : argv) line += (line.empty() ? "" : " ") + a;
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  const int error = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (error == ENOENT) {
    return FailedPrecondition("'" + argv[0] + "' not found on PATH: install the Debian package " +
                              package + " (deploy/install-deps.sh)");
  }
  if (error != 0) return Internal("cannot start '" + line + "': " + std::strerror(error));
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return Internal("waiting for '" + line + "': " + std::strerror(errno));
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
    return FailedPrecondition("'" + argv[0] + "' could not run: install the Debian package " +
                              package + " (deploy/install-deps.sh)");
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return Internal("'" + line + "' failed (" +
                    (WIFEXITED(status) ? "exit code " + std::to_string(WEXITSTATUS(status))
                                       : "signal " + std::to_string(WTERMSIG(status))) +
                    ")");
  }
  return Status::Ok();
}

}  // namespace dtrain::data
