#include "workers/trainer/tasks/style_transfer/contact_sheet.h"

#include <stb_image_write.h>

#include <algorithm>
#include <cstring>

#include "runtime/data/images/image_set.h"

namespace dtrain::style {

StatusOr<RgbImage> ComposeContactSheet(const std::vector<std::vector<RgbImage>>& rows, int cell) {
  if (rows.empty()) return InvalidArgument("contact sheet: no rows");
  if (rows.size() > static_cast<size_t>(kMaxContactSheetRows)) {
    return InvalidArgument("contact sheet: " + std::to_string(rows.size()) + " rows, at most " +
                           std::to_string(kMaxContactSheetRows));
  }
  if (cell < 8 || cell > kMaxContactSheetCell) {
    return InvalidArgument("contact sheet: cell size " + std::to_string(cell) + " outside [8, " +
                           std::to_string(kMaxContactSheetCell) + "]");
  }
  size_t columns = 0;
  for (const auto& row : rows) columns = std::max(columns, row.size());
  if (columns == 0) return InvalidArgument("contact sheet: every row is empty");
  RgbImage sheet;
  sheet.width = static_cast<int>(columns) * (cell + kContactSheetGap) + kContactSheetGap;
  sheet.height = static_cast<int>(rows.size()) * (cell + kContactSheetGap) + kContactSheetGap;
  sheet.pixels.assign(static_cast<size_t>(sheet.width) * sheet.height * 3, 255);
  for (size_t r = 0; r < rows.size(); ++r) {
    for (size_t c = 0; c < rows[r].size(); ++c) {
      const RgbImage& image = rows[r][c];
      if (image.height <= 0 || image.width <= 0 ||
          image.pixels.size() != static_cast<size_t>(image.height) * image.width * 3) {
        return InvalidArgument("contact sheet: image " + std::to_string(c) + " of row " +
                               std::to_string(r) + " is empty or its pixels do not match " +
                               std::to_string(image.height) + "x" + std::to_string(image.width));
      }
      const std::vector<uint8_t> resized =
          data::ResizeBilinear(image.pixels.data(), image.height, image.width, 3, cell, cell);
      const int top = kContactSheetGap + static_cast<int>(r) * (cell + kContactSheetGap);
      const int left = kContactSheetGap + static_cast<int>(c) * (cell + kContactSheetGap);
      for (int y = 0; y < cell; ++y) {
        std::memcpy(&sheet.pixels[(static_cast<size_t>(top + y) * sheet.width + left) * 3],
                    &resized[static_cast<size_t>(y) * cell * 3], static_cast<size_t>(cell) * 3);
      }
    }
  }
  return sheet;
}

Status WritePng(const std::string& path, const RgbImage& image) {
  if (stbi_write_png(path.c_str(), image.width, image.height, 3, image.pixels.data(),
                     image.width * 3) == 0) {
    return Internal("cannot write PNG " + path);
  }
  return Status::Ok();
}

}  // namespace dtrain::style
