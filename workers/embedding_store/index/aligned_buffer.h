// AlignedBuffer: zero-initialised, 64-byte aligned memory for vector storage that leaves no
// copy of a vector behind when it is freed or grown, so removed face encodings do not linger.
// Small buffers come from the heap and are wiped before they are freed. Large ones (>= 2 MiB)
// are anonymous mappings: their pages are zero until first written, cost no memory until then,
// may use 2 MiB pages, and go back to the kernel on release, which zeroes them before any reuse.
// Internal to the index library.
#ifndef DTRAIN_WORKERS_EMBEDDING_STORE_INDEX_ALIGNED_BUFFER_H_
#define DTRAIN_WORKERS_EMBEDDING_STORE_INDEX_ALIGNED_BUFFER_H_

#include <cstddef>

namespace dtrain::embed {

class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(size_t bytes);  // aborts (like new) when memory is exhausted
  ~AlignedBuffer();

  AlignedBuffer(AlignedBuffer&& other) noexcept;
  AlignedBuffer& operator=(AlignedBuffer&& other) noexcept;
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;

  char* data() { return data_; }
  const char* data() const { return data_; }
  size_t size() const { return size_; }

  // Grows to at least `bytes`, keeping the first `keep_bytes`; the rest is zero. The old block
  // is released as the destructor would.
  void Grow(size_t bytes, size_t keep_bytes);

 private:
  void Release();

  char* data_ = nullptr;
  size_t size_ = 0;
  bool mapped_ = false;
};

// Overwrites `bytes` at `p` with zeros in a way the compiler may not drop as a dead store.
void SecureZero(void* p, size_t bytes);

}  // namespace dtrain::embed

#endif  // DTRAIN_WORKERS_EMBEDDING_STORE_INDEX_ALIGNED_BUFFER_H_
