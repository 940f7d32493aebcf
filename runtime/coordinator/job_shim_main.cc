// dtrain-job-shim EXIT_FILE PROGRAM [ARGS...]
// Runs PROGRAM (mpirun) as its child, forwards SIGTERM/SIGINT to it, and when it ends writes
// "<exit code> <signal>" to EXIT_FILE atomically, then exits the same way. The coordinator
// starts jobs through it so a job's outcome is known even after the coordinator restarts.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "runtime/coordinator/launchers/local_mpirun.h"

namespace {

volatile sig_atomic_t child_pid = 0;

void Forward(int sig) {
  if (child_pid > 0) ::kill(child_pid, sig);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: dtrain-job-shim EXIT_FILE PROGRAM [ARGS...]\n");
    return 2;
  }
  const char* exit_file = argv[1];
  struct sigaction forward {};
  forward.sa_handler = Forward;
  sigemptyset(&forward.sa_mask);
  ::sigaction(SIGTERM, &forward, nullptr);
  ::sigaction(SIGINT, &forward, nullptr);
  ::sigaction(SIGHUP, &forward, nullptr);

  const pid_t pid = ::fork();
  if (pid < 0) {
    std::fprintf(stderr, "dtrain-job-shim: fork: %s\n", std::strerror(errno));
    (void)dtrain::coordinator::WriteExitFile(exit_file, 127, 0);
    return 127;
  }
  if (pid == 0) {
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    ::sigaction(SIGTERM, &dfl, nullptr);
    ::sigaction(SIGINT, &dfl, nullptr);
    ::sigaction(SIGHUP, &dfl, nullptr);
    ::execv(argv[2], argv + 2);
    std::fprintf(stderr, "dtrain-job-shim: cannot start '%s': %s\n", argv[2], std::strerror(errno));
    ::_exit(127);
  }
  child_pid = pid;
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      std::fprintf(stderr, "dtrain-job-shim: waitpid: %s\n", std::strerror(errno));
      status = 127 << 8;
      break;
    }
  }
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  const int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  dtrain::Status written = dtrain::coordinator::WriteExitFile(exit_file, code, sig);
  if (!written.ok()) std::fprintf(stderr, "dtrain-job-shim: %s\n", written.ToString().c_str());
  return code;
}
