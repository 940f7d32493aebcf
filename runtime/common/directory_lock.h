// DirectoryLock: one owner at a time for a directory of durable state (the coordinator's state
// dir, a face database). An exclusive, non-blocking flock on <dir>/LOCK held for the lock's
// life; the kernel drops it when the process dies, so a crashed owner never leaves the directory
// locked. The holder's pid is written into the file so that a refusal can name it.
#ifndef DTRAIN_RUNTIME_COMMON_DIRECTORY_LOCK_H_
#define DTRAIN_RUNTIME_COMMON_DIRECTORY_LOCK_H_

#include <string>

#include "runtime/common/status.h"

namespace dtrain {

class DirectoryLock {
 public:
  static constexpr char kFileName[] = "LOCK";

  // Locks `dir` (which must exist) for `owner`, a phrase for messages ("coordinator state dir").
  // FAILED_PRECONDITION when another open file description holds it — another process, or the
  // same process through another DirectoryLock: "<owner> '<dir>' is in use (pid N holds
  // <dir>/LOCK)". Other failures name the file and errno.
  static StatusOr<DirectoryLock> Acquire(const std::string& dir, const std::string& owner);

  DirectoryLock(DirectoryLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  DirectoryLock& operator=(DirectoryLock&& other) noexcept;
  DirectoryLock(const DirectoryLock&) = delete;
  DirectoryLock& operator=(const DirectoryLock&) = delete;
  ~DirectoryLock();  // releases the lock

 private:
  explicit DirectoryLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace dtrain

#endif  // DTRAIN_RUNTIME_COMMON_DIRECTORY_LOCK_H_
