// Scratch files for fuzz targets whose code under test reads a path: one private directory per
// process (under $TMPDIR, /dev/shm when it exists, as writing there costs no disk I/O), removed
// at exit.
#ifndef DTRAIN_TESTS_FUZZ_FUZZ_FILE_H_
#define DTRAIN_TESTS_FUZZ_FUZZ_FILE_H_

#include <unistd.h>
#include <zlib.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace dtrain::fuzz {

class ScratchDir {
 public:
  ScratchDir() {
    const char* tmp = std::getenv("TMPDIR");
    std::string base = tmp != nullptr && *tmp != '\0'              ? tmp
                       : std::filesystem::is_directory("/dev/shm") ? "/dev/shm"
                                                                   : "/tmp";
    std::string templ = base + "/dtrain-fuzz-XXXXXX";
    if (::mkdtemp(templ.data()) == nullptr) {
      std::perror("mkdtemp");
      std::abort();
    }
    dir_ = templ;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

 private:
  std::string dir_;
};

// The process's scratch directory (a function-local static: removed when the fuzzer exits).
inline const ScratchDir& Scratch() {
  static const ScratchDir dir;
  return dir;
}

// Writes `size` bytes to `path`, gzip-compressed when `gzip`; aborts on I/O failure (a broken
// harness, not a finding).
inline void WriteFile(const std::string& path, const void* data, size_t size, bool gzip = false) {
  if (gzip) {
    gzFile f = gzopen(path.c_str(), "wb1");
    if (f == nullptr || (size > 0 && gzwrite(f, data, static_cast<unsigned>(size)) <= 0) ||
        gzclose(f) != Z_OK) {
      std::fprintf(stderr, "cannot write %s\n", path.c_str());
      std::abort();
    }
    return;
  }
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr || (size > 0 && std::fwrite(data, 1, size, f) != size) || std::fclose(f) != 0) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    std::abort();
  }
}

}  // namespace dtrain::fuzz

#endif  // DTRAIN_TESTS_FUZZ_FUZZ_FILE_H_
