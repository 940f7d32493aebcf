// Fuzzes the IDX loader (LoadIdx): the input is split into an image file and a label file,
// each written plain or gzip-compressed, so both the headers and zlib's path are covered.
//
// Input layout: flags u8 (bit 0: gzip the images, bit 1: gzip the labels, bit 2: pass class
// names) | label_bytes u16 LE | images... | labels[label_bytes] (clamped to what is there).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/data/images/image_set.h"
#include "tests/fuzz/fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  const uint8_t flags = data[0];
  size_t label_bytes = data[1] | (size_t{data[2]} << 8);
  data += 3;
  size -= 3;
  if (label_bytes > size) label_bytes = size;
  const size_t image_bytes = size - label_bytes;
  const auto& scratch = dtrain::fuzz::Scratch();
  const std::string images = scratch.Path("images-idx3-ubyte");
  const std::string labels = scratch.Path("labels-idx1-ubyte");
  dtrain::fuzz::WriteFile(images, data, image_bytes, flags & 1);
  dtrain::fuzz::WriteFile(labels, data + image_bytes, label_bytes, flags & 2);
  std::vector<std::string> names;
  if (flags & 4) names = {"a", "b", "c"};
  dtrain::StatusOr<dtrain::data::ImageSet> set = dtrain::data::LoadIdx(images, labels, names);
  if (set.ok()) {
    // What the loader promises: one label per image, every label names a class.
    if (set->pixels.size() != set->size() * set->image_bytes()) __builtin_trap();
    for (int32_t label : set->labels) {
      if (label < 0 || static_cast<size_t>(label) >= set->class_names.size()) __builtin_trap();
    }
  }
  return 0;
}
