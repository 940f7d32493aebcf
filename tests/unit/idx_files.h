// Writes MNIST-style IDX files (optionally gzip-compressed) for tests of the IDX loaders.
#ifndef DTRAIN_TESTS_UNIT_IDX_FILES_H_
#define DTRAIN_TESTS_UNIT_IDX_FILES_H_

#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdint>
#include <string>
#include <vector>

namespace dtrain::testing {

inline std::string Be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

inline std::string IdxImages(uint32_t n, uint32_t rows, uint32_t cols, uint32_t magic = 0x803) {
  std::string s = Be32(magic) + Be32(n) + Be32(rows) + Be32(cols);
  for (uint32_t i = 0; i < n * rows * cols; ++i) s.push_back(static_cast<char>(i * 7 % 256));
  return s;
}

inline std::string IdxLabels(const std::vector<uint8_t>& labels, uint32_t magic = 0x801) {
  std::string s = Be32(magic) + Be32(static_cast<uint32_t>(labels.size()));
  for (uint8_t l : labels) s.push_back(static_cast<char>(l));
  return s;
}

inline void WriteGzip(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())),
            static_cast<int>(bytes.size()));
  ASSERT_EQ(gzclose(f), Z_OK);
}

}  // namespace dtrain::testing

#endif  // DTRAIN_TESTS_UNIT_IDX_FILES_H_
