// Fixed-width little-endian encoding for the WAL and snapshot formats. Vectors are stored as raw
// IEEE-754 float32 bytes, so the formats are defined for little-endian hosts only (x86-64,
// aarch64); the static_assert keeps a big-endian build from writing unreadable files.
#ifndef DTRAIN_WORKERS_EMBEDDING_STORE_STORAGE_CODING_H_
#define DTRAIN_WORKERS_EMBEDDING_STORE_STORAGE_CODING_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "dtrain embedding-store files are little-endian");

namespace dtrain::embed::coding {

template <typename T>
inline void PutFixed(std::string* dst, T v) {
  dst->append(reinterpret_cast<const char*>(&v), sizeof(v));
}

template <typename T>
inline T LoadFixed(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// A u16 length followed by the bytes; callers bound the length before encoding.
inline void PutString16(std::string* dst, std::string_view s) {
  PutFixed<uint16_t>(dst, static_cast<uint16_t>(s.size()));
  dst->append(s.data(), s.size());
}

inline void PutFloats(std::string* dst, const std::vector<float>& v) {
  if (v.empty()) return;  // data() may be null
  dst->append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

// Reads fields front to back from a byte range; every Get fails (returns false) instead of
// reading past the end, so a corrupt length can never overrun the buffer.
class Decoder {
 public:
  Decoder(const char* data, size_t size) : p_(data), end_(data + size) {}

  size_t remaining() const { return static_cast<size_t>(end_ - p_); }

  template <typename T>
  bool Get(T* v) {
    if (remaining() < sizeof(T)) return false;
    *v = LoadFixed<T>(p_);
    p_ += sizeof(T);
    return true;
  }

  bool GetString16(std::string* s) {
    uint16_t n;
    if (!Get(&n) || remaining() < n) return false;
    s->assign(p_, n);
    p_ += n;
    return true;
  }

  bool GetFloats(size_t n, std::vector<float>* v) {
    if (remaining() / sizeof(float) < n) return false;
    v->resize(n);
    if (n == 0) return true;  // memcpy from or to a null pointer is undefined even for 0 bytes
    std::memcpy(v->data(), p_, n * sizeof(float));
    p_ += n * sizeof(float);
    return true;
  }

 private:
  const char* p_;
  const char* end_;
};

}  // namespace dtrain::embed::coding

#endif  // DTRAIN_WORKERS_EMBEDDING_STORE_STORAGE_CODING_H_
