#include "workers/embedding_store/storage/file_util.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <utility>

namespace dtrain::embed {

void ScopedFd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

Status ErrnoStatus(const std::string& what, const std::string& path, int err) {
  StatusCode code = StatusCode::kInternal;
  if (err == ENOSPC || err == EDQUOT) code = StatusCode::kResourceExhausted;
  if (err == ENOENT) code = StatusCode::kNotFound;
  if (err == EACCES || err == EPERM || err == EROFS) code = StatusCode::kPermissionDenied;
  return Status(code, what + " " + path + ": " + std::strerror(err));
}

StatusOr<ScopedFd> OpenFile(const std::string& path, int flags, mode_t mode) {
  int fd;
  do {
    fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return ErrnoStatus("cannot open", path, errno);
  return ScopedFd(fd);
}

Status WriteFully(int fd, const void* data, size_t n, const std::string& path) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("cannot write", path, errno);
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return Status::Ok();
}

Status PwriteFully(int fd, const void* data, size_t n, off_t offset, const std::string& path) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::pwrite(fd, p, n, offset);
    if (w < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("cannot write", path, errno);
    }
    p += w;
    n -= static_cast<size_t>(w);
    offset += w;
  }
  return Status::Ok();
}

Status SyncData(int fd, const std::string& path) {
  // No retry on EINTR/EIO: after a failed fsync the kernel may already have dropped the dirty
  // pages, so a second fsync could report success for data that never reached the disk.
  if (::fdatasync(fd) != 0) return ErrnoStatus("cannot fdatasync", path, errno);
  return Status::Ok();
}

StatusOr<uint64_t> FileSize(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return ErrnoStatus("cannot stat", path, errno);
  return static_cast<uint64_t>(st.st_size);
}

Status TruncateFile(const std::string& path, uint64_t size) {
  DTRAIN_ASSIGN_OR_RETURN(ScopedFd fd, OpenFile(path, O_WRONLY));
  if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) {
    return ErrnoStatus("cannot truncate", path, errno);
  }
  return SyncData(fd.get(), path);
}

StatusOr<MappedFile> MappedFile::Open(const std::string& path) {
  DTRAIN_ASSIGN_OR_RETURN(ScopedFd fd, OpenFile(path, O_RDONLY));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus("cannot stat", path, errno);
  MappedFile file;
  if (st.st_size == 0) return file;
  void* addr =
      ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd.get(), 0);
  if (addr == MAP_FAILED) return ErrnoStatus("cannot mmap", path, errno);
  file.addr_ = addr;
  file.size_ = static_cast<size_t>(st.st_size);
  return file;
}

MappedFile::~MappedFile() {
  if (addr_ != nullptr) ::munmap(addr_, size_);
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : addr_(std::exchange(other.addr_, nullptr)), size_(std::exchange(other.size_, 0)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    if (addr_ != nullptr) ::munmap(addr_, size_);
    addr_ = std::exchange(other.addr_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

}  // namespace dtrain::embed
