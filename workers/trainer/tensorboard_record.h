// TFRecord framing, the container TensorBoard's event files use (torch-free, protobuf-free):
//   uint64 length (little-endian) | uint32 masked CRC32C of those 8 bytes |
//   data | uint32 masked CRC32C of data
// The CRC is CRC-32C (Castagnoli), masked as TensorFlow's crc32c::Mask does, because a CRC
// computed over data that embeds CRCs is weak.
#ifndef DTRAIN_WORKERS_TRAINER_TENSORBOARD_RECORD_H_
#define DTRAIN_WORKERS_TRAINER_TENSORBOARD_RECORD_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace dtrain::trainer {

// CRC-32C of `data` (reflected polynomial 0x82F63B78, initial and final XOR 0xFFFFFFFF):
// Crc32c("123456789") == 0xE3069283.
uint32_t Crc32c(std::string_view data);

// TensorFlow's mask: rotate right by 15 bits, add 0xA282EAD8.
uint32_t MaskCrc32c(uint32_t crc);

// `data` framed as one TFRecord.
std::string FrameTfRecord(std::string_view data);

}  // namespace dtrain::trainer

#endif  // DTRAIN_WORKERS_TRAINER_TENSORBOARD_RECORD_H_
