// Fuzzes the embedding store's snapshot reader (ReadSnapshot) over an arbitrary file.
//
// Input layout: flags u8 | the file. Flag bit 0 rewrites the header's body size and both
// checksums to match the file, so that mutations reach the header fields and the face
// decoder; bit 1 opens with the dim the header announces (else with dim 4).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "tests/fuzz/fuzz_file.h"
#include "workers/embedding_store/storage/crc32c.h"
#include "workers/embedding_store/storage/snapshot.h"

namespace {

using dtrain::embed::kSnapshotHeaderBytes;

// Header offsets (snapshot.h): dim at 12, body_bytes at 56, body_crc at 64, header_crc at 68.
void RepairHeader(std::string* file) {
  if (file->size() < kSnapshotHeaderBytes) return;
  char* p = file->data();
  const uint64_t body_bytes = file->size() - kSnapshotHeaderBytes;
  std::memcpy(p + 56, &body_bytes, 8);
  const uint32_t body_crc = dtrain::embed::Crc32c(p + kSnapshotHeaderBytes, body_bytes);
  std::memcpy(p + 64, &body_crc, 4);
  const uint32_t header_crc = dtrain::embed::Crc32c(p, kSnapshotHeaderBytes - 4);
  std::memcpy(p + 68, &header_crc, 4);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t flags = data[0];
  std::string file(reinterpret_cast<const char*>(data + 1), size - 1);
  if (flags & 1) RepairHeader(&file);
  uint32_t dim = 4;
  if ((flags & 2) && file.size() >= 16) std::memcpy(&dim, file.data() + 12, 4);
  const std::string path = dtrain::fuzz::Scratch().Path("snapshot.bin");
  dtrain::fuzz::WriteFile(path, file.data(), file.size());

  uint64_t faces = 0;
  auto info = dtrain::embed::ReadSnapshot(path, dim, [&](dtrain::embed::Face&& face) {
    if (face.vector.size() != dim) __builtin_trap();
    ++faces;
    return dtrain::Status::Ok();
  });
  if (info.ok() && info->face_count != faces) __builtin_trap();
  return 0;
}
