// CRC-32C (Castagnoli, the polynomial of iSCSI, ext4 and leveldb): guards every WAL record and the
// snapshot body. Table-driven (slicing-by-8) so that the library needs no zlib and no SSE4.2.
#ifndef DTRAIN_WORKERS_EMBEDDING_STORE_STORAGE_CRC32C_H_
#define DTRAIN_WORKERS_EMBEDDING_STORE_STORAGE_CRC32C_H_

#include <cstddef>
#include <cstdint>

namespace dtrain::embed {

// Returns the CRC-32C of data[0, n) continuing from `crc`, the value a previous call returned
// for the bytes before it (0 for the start): Crc32c(Crc32c(0, a), b) == Crc32c(0, a + b).
uint32_t Crc32cExtend(uint32_t crc, const void* data, size_t n);

inline uint32_t Crc32c(const void* data, size_t n) { return Crc32cExtend(0, data, n); }

}  // namespace dtrain::embed

#endif  // DTRAIN_WORKERS_EMBEDDING_STORE_STORAGE_CRC32C_H_
