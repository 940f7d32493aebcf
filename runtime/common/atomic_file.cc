#include "runtime/common/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

namespace dtrain {
namespace {

Status FromErrno(const std::string& what, const std::string& path, int err) {
  StatusCode code = StatusCode::kInternal;
  if (err == ENOSPC || err == EDQUOT) code = StatusCode::kResourceExhausted;
  if (err == EACCES || err == EPERM || err == EROFS) code = StatusCode::kPermissionDenied;
  if (err == ENOENT || err == ENOTDIR) code = StatusCode::kNotFound;
  return Status(code, what + " '" + path + "': " + std::strerror(err));
}

std::string ParentOf(const std::string& path) {
  const std::string parent = std::filesystem::path(path).parent_path().string();
  return parent.empty() ? "." : parent;
}

// Unique per process and call, so concurrent writers of one path never share a temporary file.
std::string TempPathFor(const std::string& path) {
  static std::atomic<uint64_t> counter{0};
  return path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
}

Status FsyncFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return FromErrno("cannot open", path, errno);
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return FromErrno("cannot fsync", path, err);
  return Status::Ok();
}

Status WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return FromErrno("cannot write", path, errno);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

// Creates `temp` empty with exactly `mode` (fchmod: the umask must not widen or narrow it).
Status CreateTemp(const std::string& temp, mode_t mode, int* fd_out) {
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return FromErrno("cannot create", temp, errno);
  if (::fchmod(fd, mode) != 0) {
    const int err = errno;
    ::close(fd);
    ::unlink(temp.c_str());
    return FromErrno("cannot set the mode of", temp, err);
  }
  *fd_out = fd;
  return Status::Ok();
}

}  // namespace

Status SyncDirectory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return FromErrno("cannot open directory", dir, errno);
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return FromErrno("cannot fsync directory", dir, err);
  return Status::Ok();
}

Status CommitTempFile(const std::string& temp_path, const std::string& path) {
  Status s = FsyncFile(temp_path);
  if (s.ok() && ::rename(temp_path.c_str(), path.c_str()) != 0) {
    s = FromErrno("cannot rename '" + temp_path + "' to", path, errno);
  }
  if (!s.ok()) {
    ::unlink(temp_path.c_str());
    return s;
  }
  return SyncDirectory(ParentOf(path));
}

Status WriteFileAtomically(const std::string& path, std::string_view contents, mode_t mode) {
  const std::string temp = TempPathFor(path);
  int fd = -1;
  DTRAIN_RETURN_IF_ERROR(CreateTemp(temp, mode, &fd));
  Status s = WriteAll(fd, contents, temp);
  if (s.ok() && ::fsync(fd) != 0) s = FromErrno("cannot fsync", temp, errno);
  if (::close(fd) != 0 && s.ok()) s = FromErrno("cannot close", temp, errno);
  if (!s.ok()) {
    ::unlink(temp.c_str());
    return s;
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(temp.c_str());
    return FromErrno("cannot rename '" + temp + "' to", path, err);
  }
  return SyncDirectory(ParentOf(path));
}

Status WriteFileAtomically(const std::string& path,
                           const std::function<Status(const std::string& temp_path)>& write,
                           mode_t mode) {
  const std::string temp = TempPathFor(path);
  int fd = -1;
  DTRAIN_RETURN_IF_ERROR(CreateTemp(temp, mode, &fd));
  ::close(fd);
  Status s = write(temp);
  if (!s.ok()) {
    ::unlink(temp.c_str());
    return s;
  }
  // A writer that replaced the file (torch::save truncates and rewrites) may have lost the mode.
  if (::chmod(temp.c_str(), mode) != 0) {
    const int err = errno;
    ::unlink(temp.c_str());
    return FromErrno("cannot set the mode of", temp, err);
  }
  return CommitTempFile(temp, path);
}

}  // namespace dtrain
