// The contact sheet of a style transfer run: one row per result, content | style | result, each
// cell resized to one square size, on a white background with a gap between cells. Torch-free.
#ifndef DTRAIN_WORKERS_TRAINER_TASKS_STYLE_TRANSFER_CONTACT_SHEET_H_
#define DTRAIN_WORKERS_TRAINER_TASKS_STYLE_TRANSFER_CONTACT_SHEET_H_

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/common/status.h"

namespace dtrain::style {

// HWC RGB, 8 bits per channel.
struct RgbImage {
  int height = 0;
  int width = 0;
  std::vector<uint8_t> pixels;  // height * width * 3
};

inline constexpr int kContactSheetGap = 4;  // pixels between cells and around the sheet
inline constexpr int kMaxContactSheetCell = 1024;
inline constexpr int kMaxContactSheetRows = 256;

// Lays `rows` (each any number of images, usually content, style, result) out as a grid of
// cell x cell squares. INVALID_ARGUMENT for no rows, an empty or malformed image, a cell outside
// [8, kMaxContactSheetCell] or more than kMaxContactSheetRows rows.
StatusOr<RgbImage> ComposeContactSheet(const std::vector<std::vector<RgbImage>>& rows, int cell);

// Writes `image` as a PNG; INTERNAL naming `path` when it cannot be written.
Status WritePng(const std::string& path, const RgbImage& image);

}  // namespace dtrain::style

#endif  // DTRAIN_WORKERS_TRAINER_TASKS_STYLE_TRANSFER_CONTACT_SHEET_H_
