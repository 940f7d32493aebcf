// Fuzzes the embedding store's WAL replay (ReplayWal) over an arbitrary log file.
//
// Input layout: flags u8 | the file. Flag bit 0 repairs the checksum of every record the
// framing finds before the file is written, so that mutations reach the body decoder instead of
// dying at the CRC; bit 1 replays with truncate_torn_tail. After a truncating replay, a second
// replay must find the same records and no torn tail.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "tests/fuzz/fuzz_file.h"
#include "workers/embedding_store/storage/crc32c.h"
#include "workers/embedding_store/storage/wal.h"

namespace {

using dtrain::embed::kMaxWalBodyBytes;
using dtrain::embed::kWalHeaderBytes;
using dtrain::embed::kWalRecordMagic;

uint32_t Load32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

void RepairChecksums(std::string* file) {
  size_t at = 0;
  while (at + kWalHeaderBytes <= file->size()) {
    char* p = file->data() + at;
    const uint32_t len = Load32(p + 4);
    if (Load32(p) != kWalRecordMagic || len > kMaxWalBodyBytes ||
        file->size() - at - kWalHeaderBytes < len) {
      ++at;
      continue;
    }
    const uint32_t crc = dtrain::embed::Crc32c(p + 12, 1 + size_t{len});
    std::memcpy(p + 8, &crc, 4);
    at += kWalHeaderBytes + len;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t flags = data[0];
  std::string file(reinterpret_cast<const char*>(data + 1), size - 1);
  if (flags & 1) RepairChecksums(&file);
  const std::string path = dtrain::fuzz::Scratch().Path("wal-000001.log");
  dtrain::fuzz::WriteFile(path, file.data(), file.size());

  dtrain::embed::WalReplayOptions options;
  options.truncate_torn_tail = (flags & 2) != 0;
  uint64_t seen = 0;
  auto count = [&seen](dtrain::embed::WalRecord&&) {
    ++seen;
    return dtrain::Status::Ok();
  };
  auto first = dtrain::embed::ReplayWal(path, options, count);
  if (!first.ok()) return 0;
  if (first->records != seen || first->end_offset > file.size()) __builtin_trap();
  if (options.truncate_torn_tail) {
    seen = 0;
    auto second = dtrain::embed::ReplayWal(path, options, count);
    if (!second.ok() || second->records != first->records || second->truncated_bytes != 0 ||
        second->end_offset != first->end_offset) {
      __builtin_trap();
    }
  }
  return 0;
}
