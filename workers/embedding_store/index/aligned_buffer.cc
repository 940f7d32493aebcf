#include "workers/embedding_store/index/aligned_buffer.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace dtrain::embed {
namespace {

constexpr size_t kCacheLine = 64;
constexpr size_t kHugePage = size_t{2} << 20;

size_t RoundUp(size_t n, size_t multiple) { return (n + multiple - 1) / multiple * multiple; }

[[noreturn]] void OutOfMemory(size_t bytes) {
  std::fprintf(stderr, "dtrain index: out of memory allocating %zu bytes\n", bytes);
  std::abort();
}

}  // namespace

void SecureZero(void* p, size_t bytes) {
  if (bytes == 0) return;
  std::memset(p, 0, bytes);
  // Tells the compiler the zeros are observed, so the memset survives even right before free().
  __asm__ __volatile__("" : : "r"(p) : "memory");
}

AlignedBuffer::AlignedBuffer(size_t bytes) {
  if (bytes == 0) return;
  if (bytes >= kHugePage) {
    size_ = RoundUp(bytes, kHugePage);
    void* p = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) OutOfMemory(size_);
#if defined(MADV_HUGEPAGE)
    // Scans and graph walks touch the whole buffer: 2 MiB pages spare most TLB misses. A hint.
    madvise(p, size_, MADV_HUGEPAGE);
#endif
    data_ = static_cast<char*>(p);
    mapped_ = true;
  } else {
    size_ = RoundUp(bytes, kCacheLine);
    data_ = static_cast<char*>(std::aligned_alloc(kCacheLine, size_));
    if (data_ == nullptr) OutOfMemory(size_);
    std::memset(data_, 0, size_);
  }
}

AlignedBuffer::~AlignedBuffer() { Release(); }

AlignedBuffer::AlignedBuffer(AlignedBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      mapped_(std::exchange(other.mapped_, false)) {}

AlignedBuffer& AlignedBuffer::operator=(AlignedBuffer&& other) noexcept {
  if (this != &other) {
    Release();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    mapped_ = std::exchange(other.mapped_, false);
  }
  return *this;
}

void AlignedBuffer::Release() {
  if (data_ == nullptr) return;
  if (mapped_) {
    munmap(data_, size_);  // the kernel zeroes the pages before anyone reuses them
  } else {
    SecureZero(data_, size_);
    std::free(data_);
  }
  data_ = nullptr;
  size_ = 0;
}

void AlignedBuffer::Grow(size_t bytes, size_t keep_bytes) {
  if (bytes <= size_) return;
  AlignedBuffer bigger(bytes);
  std::memcpy(bigger.data(), data(), std::min(keep_bytes, size_));
  *this = std::move(bigger);  // releases the old block
}

}  // namespace dtrain::embed
