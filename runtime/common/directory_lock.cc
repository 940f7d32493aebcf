#include "runtime/common/directory_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>

namespace dtrain {

StatusOr<DirectoryLock> DirectoryLock::Acquire(const std::string& dir, const std::string& owner) {
  const std::string path = (std::filesystem::path(dir) / kFileName).string();
  // Owner-only: the file sits among state only its owner may read. O_NOFOLLOW: a LOCK that is
  // a symlink (planted by whoever can write the directory) would make the holder truncate and
  // write its pid into the file the link names.
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    const int err = errno;
    if (err == ELOOP) {
      return FailedPrecondition("cannot lock " + owner + " '" + dir + "': " + path +
                                " is a symbolic link; remove it (a lock file is never a link)");
    }
    return Status(err == EACCES ? StatusCode::kPermissionDenied : StatusCode::kInternal,
                  "cannot open '" + path + "': " + std::strerror(err));
  }
  DirectoryLock lock(fd);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    if (err == EWOULDBLOCK) {
      char holder[32] = {0};
      const ssize_t n = ::pread(fd, holder, sizeof(holder) - 1, 0);
      std::string pid = n > 0 ? std::string(holder, static_cast<size_t>(n)) : "";
      while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
      return FailedPrecondition(owner + " '" + dir + "' is in use (" +
                                (pid.empty() ? "another process" : "pid " + pid) + " holds " +
                                path + ")");
    }
    return Internal("cannot lock '" + path + "': " + std::strerror(err));
  }
  // Only the holder writes: after the lock, so a refused opener never clobbers the pid.
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    return Internal("cannot write '" + path + "': " + std::strerror(errno));
  }
  return lock;
}

DirectoryLock& DirectoryLock::operator=(DirectoryLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

DirectoryLock::~DirectoryLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the last descriptor of the file releases the flock
}

}  // namespace dtrain
