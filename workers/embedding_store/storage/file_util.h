// POSIX file helpers for the storage layer: an owning descriptor, whole-buffer writes, fdatasync,
// and a read-only memory map used by WAL replay and snapshot loading. Every failure comes back
// as a Status naming the path and the errno text. Replacing a file and fsyncing a directory are
// runtime/common/atomic_file.h's, shared with every other durable writer.
#ifndef DTRAIN_WORKERS_EMBEDDING_STORE_STORAGE_FILE_UTIL_H_
#define DTRAIN_WORKERS_EMBEDDING_STORE_STORAGE_FILE_UTIL_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "runtime/common/status.h"

namespace dtrain::embed {

// Owns a file descriptor; closes it on destruction. Move-only.
class ScopedFd {
 public:
  ScopedFd() = default;
  explicit ScopedFd(int fd) : fd_(fd) {}
  ~ScopedFd() { reset(); }
  ScopedFd(ScopedFd&& other) noexcept : fd_(other.release()) {}
  ScopedFd& operator=(ScopedFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

// "what path: strerror(err)", with a code chosen from errno (ENOSPC → RESOURCE_EXHAUSTED,
// ENOENT → NOT_FOUND, EACCES → PERMISSION_DENIED, anything else → INTERNAL).
Status ErrnoStatus(const std::string& what, const std::string& path, int err);

// The mode of every file the store writes: owner-only, since the files hold biometric vectors.
inline constexpr mode_t kDataFileMode = 0600;

StatusOr<ScopedFd> OpenFile(const std::string& path, int flags, mode_t mode = kDataFileMode);
// Writes all n bytes (retrying short writes and EINTR).
Status WriteFully(int fd, const void* data, size_t n, const std::string& path);
Status PwriteFully(int fd, const void* data, size_t n, off_t offset, const std::string& path);
// fdatasync: enough for appends, since it also flushes the file size needed to read them back.
Status SyncData(int fd, const std::string& path);
StatusOr<uint64_t> FileSize(const std::string& path);
Status TruncateFile(const std::string& path, uint64_t size);

// A read-only private mapping of a whole file. Empty files give data() == nullptr, size() == 0.
class MappedFile {
 public:
  static StatusOr<MappedFile> Open(const std::string& path);
  MappedFile() = default;
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const char* data() const { return static_cast<const char*>(addr_); }
  size_t size() const { return size_; }

 private:
  void* addr_ = nullptr;
  size_t size_ = 0;
};

}  // namespace dtrain::embed

#endif  // DTRAIN_WORKERS_EMBEDDING_STORE_STORAGE_FILE_UTIL_H_
