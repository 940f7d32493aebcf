// Tests for runtime/data/image_folder.cc and runtime/data/idx.cc.
#include "runtime/data/images/image_set.h"

#include <gtest/gtest.h>
#include <stb/stb_image_write.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "tests/support/temp_dir.h"
#include "tests/unit/idx_files.h"

namespace dtrain::data {
namespace {

namespace fs = std::filesystem;

using dtrain::testing::IdxImages;
using dtrain::testing::IdxLabels;
using dtrain::testing::TempDir;
using dtrain::testing::WriteGzip;

std::vector<uint8_t> Solid(int h, int w, int c, std::vector<uint8_t> value) {
  std::vector<uint8_t> px(static_cast<size_t>(h) * w * c);
  for (size_t i = 0; i < px.size(); ++i) px[i] = value[i % c];
  return px;
}

void WritePng(const std::string& path, int h, int w, int c, const std::vector<uint8_t>& px) {
  fs::create_directories(fs::path(path).parent_path());
  ASSERT_NE(stbi_write_png(path.c_str(), w, h, c, px.data(), w * c), 0) << path;
}

void WriteJpg(const std::string& path, int h, int w, int c, const std::vector<uint8_t>& px) {
  fs::create_directories(fs::path(path).parent_path());
  ASSERT_NE(stbi_write_jpg(path.c_str(), w, h, c, px.data(), 95), 0) << path;
}

void WriteBytes(const std::string& path, const std::string& bytes) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << bytes;
}

// ---------------------------------------------------------------------------------------------
// ResizeBilinear

TEST(ResizeBilinearTest, SameSizeIsACopy) {
  const std::vector<uint8_t> src = {1, 2, 3, 4, 5, 6};
  EXPECT_EQ(ResizeBilinear(src.data(), 2, 3, 1, 2, 3), src);
}

TEST(ResizeBilinearTest, EnlargeInterpolatesWithHalfPixelCentres) {
  // 1x2 -> 1x4: output centres at 0.25, 0.75, 1.25, 1.75 source px of [0, 100].
  const std::vector<uint8_t> src = {0, 100};
  EXPECT_EQ(ResizeBilinear(src.data(), 1, 2, 1, 1, 4), (std::vector<uint8_t>{0, 25, 75, 100}));
}

TEST(ResizeBilinearTest, ShrinkAveragesAndKeepsConstants) {
  // 2x2 -> 1x1 is the mean of the four pixels, per channel.
  const std::vector<uint8_t> src = {0, 10, 100, 20, 200, 30, 100, 40};
  const std::vector<uint8_t> mean = {100, 25};
  EXPECT_EQ(ResizeBilinear(src.data(), 2, 2, 2, 1, 1), mean);
  // A constant image stays constant at any size.
  const std::vector<uint8_t> grey = Solid(37, 53, 3, {7, 128, 250});
  EXPECT_EQ(ResizeBilinear(grey.data(), 37, 53, 3, 8, 11), Solid(8, 11, 3, {7, 128, 250}));
  EXPECT_EQ(ResizeBilinear(grey.data(), 37, 53, 3, 90, 70), Solid(90, 70, 3, {7, 128, 250}));
}

TEST(ResizeBilinearTest, ShrinkingStripesDoesNotAlias) {
  // Alternating 0/255 columns shrunk 8x must come out about mid-grey (a point-sampling resize
  // would give 0 or 255; the triangle filter leaves a small ripple).
  std::vector<uint8_t> src(64 * 64);
  for (int y = 0; y < 64; ++y)
    for (int x = 0; x < 64; ++x) src[y * 64 + x] = (x % 2) ? 255 : 0;
  for (uint8_t v : ResizeBilinear(src.data(), 64, 64, 1, 8, 8)) {
    EXPECT_NEAR(v, 128, 8);
  }
}

// ---------------------------------------------------------------------------------------------
// LoadImageFolder

TEST(ImageFolderTest, LoadsPngAndJpegInSortedClassAndFileOrder) {
  TempDir dir;
  // Classes written out of order; labels must follow the sorted names.
  WritePng(dir.str("zebra/b.png"), 4, 4, 3, Solid(4, 4, 3, {0, 0, 255}));
  WritePng(dir.str("zebra/a.PNG"), 4, 4, 3, Solid(4, 4, 3, {0, 255, 0}));
  WriteJpg(dir.str("apple/x.jpg"), 8, 8, 3, Solid(8, 8, 3, {200, 40, 40}));
  WriteJpg(dir.str("apple/y.JPEG"), 8, 8, 3, Solid(8, 8, 3, {40, 40, 200}));
  WriteBytes(dir.str("apple/notes.txt"), "not an image");  // ignored: not PNG/JPEG
  WriteBytes(dir.str("README"), "a file at the root is not a class");

  ImageFolderOptions options;
  options.root = dir.path().string();
  options.height = 4;
  options.width = 4;
  auto set = LoadImageFolder(options);
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  EXPECT_EQ(set->class_names, (std::vector<std::string>{"apple", "zebra"}));
  EXPECT_EQ(set->labels, (std::vector<int32_t>{0, 0, 1, 1}));
  EXPECT_EQ(set->height, 4);
  EXPECT_EQ(set->width, 4);
  EXPECT_EQ(set->channels, 3);
  EXPECT_EQ(set->pixels.size(), 4u * 4 * 4 * 3);
  EXPECT_EQ(set->skipped, 0u);
  // apple/x.jpg (red, JPEG is lossy), apple/y.JPEG (blue), zebra/a.PNG (green), zebra/b.png.
  EXPECT_NEAR(set->image(0)[0], 200, 6);
  EXPECT_NEAR(set->image(0)[2], 40, 6);
  EXPECT_NEAR(set->image(1)[2], 200, 6);
  const uint8_t* green = set->image(2);
  EXPECT_EQ((std::vector<uint8_t>(green, green + 3)), (std::vector<uint8_t>{0, 255, 0}));
  const uint8_t* blue = set->image(3);
  EXPECT_EQ((std::vector<uint8_t>(blue, blue + 3)), (std::vector<uint8_t>{0, 0, 255}));
}

TEST(ImageFolderTest, ResizesEveryImageToTheTargetShape) {
  TempDir dir;
  WritePng(dir.str("a/big.png"), 40, 60, 3, Solid(40, 60, 3, {10, 20, 30}));
  WritePng(dir.str("a/small.png"), 3, 2, 3, Solid(3, 2, 3, {90, 80, 70}));
  ImageFolderOptions options;
  options.root = dir.path().string();
  options.height = 12;
  options.width = 9;
  auto set = LoadImageFolder(options);
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  ASSERT_EQ(set->size(), 2u);
  EXPECT_EQ(set->image_bytes(), 12u * 9 * 3);
  EXPECT_EQ(set->pixels.size(), 2 * set->image_bytes());
  EXPECT_EQ((std::vector<uint8_t>(set->image(0), set->image(0) + set->image_bytes())),
            Solid(12, 9, 3, {10, 20, 30}));
  EXPECT_EQ((std::vector<uint8_t>(set->image(1), set->image(1) + set->image_bytes())),
            Solid(12, 9, 3, {90, 80, 70}));
}

TEST(ImageFolderTest, ConvertsGreyToRgbAndRgbToGreyAndDropsAlpha) {
  TempDir dir;
  WritePng(dir.str("c/grey.png"), 2, 2, 1, Solid(2, 2, 1, {77}));
  WritePng(dir.str("c/rgba.png"), 2, 2, 4, Solid(2, 2, 4, {255, 0, 0, 10}));
  ImageFolderOptions options;
  options.root = dir.path().string();
  options.height = 2;
  options.width = 2;

  options.channels = 3;
  auto rgb = LoadImageFolder(options);
  ASSERT_TRUE(rgb.ok()) << rgb.status().ToString();
  EXPECT_EQ((std::vector<uint8_t>(rgb->image(0), rgb->image(0) + 12)),
            Solid(2, 2, 3, {77, 77, 77}));
  EXPECT_EQ((std::vector<uint8_t>(rgb->image(1), rgb->image(1) + 12)), Solid(2, 2, 3, {255, 0, 0}));

  options.channels = 1;
  auto grey = LoadImageFolder(options);
  ASSERT_TRUE(grey.ok()) << grey.status().ToString();
  EXPECT_EQ(grey->channels, 1);
  EXPECT_EQ(grey->image(0)[0], 77);
  // Pure red has luma about 0.3 * 255.
  EXPECT_NEAR(grey->image(1)[0], 76, 2);

  options.channels = 2;
  auto bad = LoadImageFolder(options);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("channels must be 1 or 3"), std::string::npos);
}

TEST(ImageFolderTest, CorruptFileIsAnErrorNamingItOrSkippedAndCounted) {
  TempDir dir;
  WritePng(dir.str("ok/good.png"), 4, 4, 3, Solid(4, 4, 3, {1, 2, 3}));
  const std::string corrupt = dir.str("ok/broken.png");
  WriteBytes(corrupt, "\x89PNG\r\n\x1a\n this is not really a png");
  ImageFolderOptions options;
  options.root = dir.path().string();
  options.height = 4;
  options.width = 4;

  auto failed = LoadImageFolder(options);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(failed.status().message().rfind("cannot decode image '" + corrupt + "': ", 0), 0u)
      << failed.status().message();

  options.skip_corrupt = true;
  auto skipped = LoadImageFolder(options);
  ASSERT_TRUE(skipped.ok()) << skipped.status().ToString();
  EXPECT_EQ(skipped->size(), 1u);
  EXPECT_EQ(skipped->skipped, 1u);
  EXPECT_EQ(skipped->skipped_files, std::vector<std::string>{corrupt});
}

// Headers the decoder must never see, found by tests/fuzz/fuzz_image_folder. They are refused
// before stb_image runs, with an error naming the file and what was wrong.
std::string Be32(uint32_t v) { return dtrain::testing::Be32(v); }

std::string PngChunk(const std::string& type, const std::string& data) {
  const std::string body = type + data;
  const uint32_t crc =
      static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(body.data()), body.size()));
  return Be32(static_cast<uint32_t>(data.size())) + body + Be32(crc);
}

std::string PngHeader(uint32_t width, uint32_t height) {
  return std::string("\x89PNG\r\n\x1a\n", 8) +
         PngChunk("IHDR", Be32(width) + Be32(height) + std::string("\x08\x02\x00\x00\x00", 5));
}

StatusOr<DecodedImage> Decode(const std::string& bytes, int channels = 3) {
  return DecodeImage(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), channels,
                     "x.png");
}

TEST(DecodeImageTest, DecodesPngAndJpegFromMemory) {
  TempDir dir;
  WritePng(dir.str("a.png"), 3, 5, 3, Solid(3, 5, 3, {10, 20, 30}));
  WriteJpg(dir.str("a.jpg"), 8, 8, 3, Solid(8, 8, 3, {200, 100, 50}));
  for (const char* name : {"a.png", "a.jpg"}) {
    std::ifstream in(dir.str(name), std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto image = Decode(bytes, 1);
    ASSERT_TRUE(image.ok()) << name << ": " << image.status().ToString();
    EXPECT_EQ(image->channels, 1);
    EXPECT_EQ(image->pixels.size(), static_cast<size_t>(image->height) * image->width);
  }
}

TEST(DecodeImageTest, ImageOverThePixelCapIsRefusedBeforeDecoding) {
  const std::string png = PngHeader(100000, 100000) + PngChunk("IDAT", "x") + PngChunk("IEND", "");
  auto image = Decode(png);
  ASSERT_FALSE(image.ok());
  EXPECT_EQ(image.status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(image.status().message(),
            "cannot decode image 'x.png': it is 100000x100000 pixels; expected at least 1x1 and "
            "at most 33554432 pixels");
}

TEST(DecodeImageTest, PngChunkPastTheEndOfTheFileIsRefused) {
  const std::string png = PngHeader(2, 2) + Be32(0x7fff0000) + "IDAT" + "short";
  auto image = Decode(png);
  ASSERT_FALSE(image.ok());
  EXPECT_EQ(image.status().message(),
            "cannot decode image 'x.png': PNG chunk at byte 33 announces 2147418112 bytes, but "
            "only 1 are left in the file");
}

TEST(DecodeImageTest, JpegHuffmanTableOfMoreThan256CodesIsRefused) {
  // SOI, a baseline 8x8 grey frame, then a DHT whose 16 counts sum to 272 (stb 2.27 wrote past
  // its 257-entry size table for this; libjpeg-turbo refuses the table).
  std::string jpeg("\xFF\xD8", 2);
  jpeg += std::string("\xFF\xC0\x00\x0B\x08\x00\x08\x00\x08\x01\x01\x11\x00", 13);
  std::string dht(1, '\x00');
  dht += std::string(16, '\x11');
  dht += std::string(272, '\x01');
  const size_t length = dht.size() + 2;
  jpeg += std::string("\xFF\xC4", 2) + static_cast<char>(length >> 8) + static_cast<char>(length);
  jpeg += dht + std::string("\xFF\xD9", 2);
  auto image = Decode(jpeg);
  ASSERT_FALSE(image.ok());
  EXPECT_EQ(image.status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(image.status().message(),
            "cannot decode image 'x.png': Bogus Huffman table definition");
}

// SOI, a frame header of `height` x `width` grey pixels and a scan header: all libjpeg needs to
// report the size.
std::string JpegHeaderOnly(int height, int width) {
  std::string jpeg("\xFF\xD8\xFF\xC0\x00\x0B\x08", 7);
  jpeg += static_cast<char>(height >> 8);
  jpeg += static_cast<char>(height);
  jpeg += static_cast<char>(width >> 8);
  jpeg += static_cast<char>(width);
  jpeg += std::string("\x01\x01\x11\x00", 4);
  jpeg += std::string("\xFF\xDA\x00\x08\x01\x01\x00\x00\x3F\x00\xFF\xD9", 12);
  return jpeg;
}

TEST(DecodeImageTest, JpegCutShortIsRefusedNotFilledWithGrey) {
  // libjpeg decodes a truncated file "successfully", filling the rest with grey (found by
  // fuzz_image_folder: 0x140 bytes became a 20491x528 image).
  TempDir dir;
  std::vector<uint8_t> noise(64 * 64 * 3);
  for (size_t i = 0; i < noise.size(); ++i) noise[i] = static_cast<uint8_t>(i * 7919 % 251);
  WriteJpg(dir.str("a.jpg"), 64, 64, 3, noise);
  std::ifstream in(dir.str("a.jpg"), std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_TRUE(Decode(bytes).ok());
  auto image = Decode(bytes.substr(0, bytes.size() / 2));
  ASSERT_FALSE(image.ok());
  EXPECT_EQ(image.status().message(),
            "cannot decode image 'x.png': it is cut short: the file ends before the image data "
            "does");
}

TEST(DecodeImageTest, JpegLargerThanThePixelLimitIsRefusedBeforeDecoding) {
  auto image = Decode(JpegHeaderOnly(8192, 8192));
  ASSERT_FALSE(image.ok());
  EXPECT_EQ(image.status().message(),
            "cannot decode image 'x.png': it is 8192x8192 pixels; expected at least 1x1 and at "
            "most 33554432 pixels");
}

TEST(DecodeImageTest, ProgressiveJpegWithTooManyScansIsRefused) {
  // An 8x8 grey progressive JPEG of 501 scans (cjpeg -scans, see the file's README line in
  // tests/unit/testdata/README.md); a real one has about ten.
  std::ifstream in(std::string(DTRAIN_TEST_DATA_DIR) + "/progressive-501-scans.jpg",
                   std::ios::binary);
  ASSERT_TRUE(in);
  const std::string jpeg((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto image = Decode(jpeg);
  ASSERT_FALSE(image.ok());
  EXPECT_EQ(image.status().message(),
            "cannot decode image 'x.png': it has more than 500 scans (a real progressive JPEG "
            "has about ten)");
}

TEST(DecodeImageTest, OtherFormatsAreRefusedWhateverTheExtension) {
  auto gif = Decode("GIF89a\x01\x00\x01\x00\x00\x00\x00;");
  ASSERT_FALSE(gif.ok());
  EXPECT_EQ(gif.status().message(), "cannot decode image 'x.png': not a PNG or JPEG file");
}

TEST(ImageFolderTest, OversizedImageIsAnErrorNamingItOrSkipped) {
  TempDir dir;
  WritePng(dir.str("ok/good.png"), 4, 4, 3, Solid(4, 4, 3, {1, 2, 3}));
  const std::string huge = dir.str("ok/huge.png");
  WriteBytes(huge, PngHeader(65536, 65536) + PngChunk("IDAT", "x") + PngChunk("IEND", ""));
  ImageFolderOptions options;
  options.root = dir.path().string();
  options.height = 4;
  options.width = 4;
  auto failed = LoadImageFolder(options);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(
      failed.status().message().rfind("cannot decode image '" + huge + "': it is 65536x65536", 0),
      0u)
      << failed.status().message();
  options.skip_corrupt = true;
  auto skipped = LoadImageFolder(options);
  ASSERT_TRUE(skipped.ok()) << skipped.status().ToString();
  EXPECT_EQ(skipped->skipped_files, std::vector<std::string>{huge});
}

TEST(ImageFolderTest, EmptyOrMissingRootIsAnErrorNamingTheRoot) {
  TempDir dir;
  ImageFolderOptions options;
  options.root = dir.path().string();
  auto empty = LoadImageFolder(options);
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().message().find("'" + options.root + "'"), std::string::npos);
  EXPECT_NE(empty.status().message().find("no class sub-folders"), std::string::npos);

  fs::create_directories(dir.path() / "cls");
  WriteBytes(dir.str("cls/readme.txt"), "no images here");
  auto no_images = LoadImageFolder(options);
  ASSERT_FALSE(no_images.ok());
  EXPECT_EQ(no_images.status().message(),
            "image folder root '" + options.root +
                "' has no PNG or JPEG images in its class sub-folders");

  options.root = dir.str("does-not-exist");
  auto missing = LoadImageFolder(options);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find(options.root), std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// IDX

void ExpectSyntheticIdx(const ImageSet& set) {
  EXPECT_EQ(set.size(), 5u);
  EXPECT_EQ(set.height, 3);
  EXPECT_EQ(set.width, 2);
  EXPECT_EQ(set.channels, 1);
  EXPECT_EQ(set.labels, (std::vector<int32_t>{0, 2, 1, 2, 0}));
  ASSERT_EQ(set.pixels.size(), 30u);
  for (size_t i = 0; i < set.pixels.size(); ++i) EXPECT_EQ(set.pixels[i], i * 7 % 256);
}

TEST(IdxTest, PlainAndGzipRoundTrip) {
  TempDir dir;
  const std::string images = IdxImages(5, 3, 2);
  const std::string labels = IdxLabels({0, 2, 1, 2, 0});
  WriteBytes(dir.str("plain-images"), images);
  WriteBytes(dir.str("plain-labels"), labels);
  WriteGzip(dir.str("gz-images.gz"), images);
  WriteGzip(dir.str("gz-labels.gz"), labels);

  auto plain = LoadIdx(dir.str("plain-images"), dir.str("plain-labels"));
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  ExpectSyntheticIdx(*plain);
  EXPECT_EQ(plain->class_names, (std::vector<std::string>{"0", "1", "2"}));

  auto gz = LoadIdx(dir.str("gz-images.gz"), dir.str("gz-labels.gz"), {"a", "b", "c", "d"});
  ASSERT_TRUE(gz.ok()) << gz.status().ToString();
  ExpectSyntheticIdx(*gz);
  EXPECT_EQ(gz->class_names, (std::vector<std::string>{"a", "b", "c", "d"}));
}

TEST(IdxTest, LoadIdxDirResolvesPlainOrGzipNames) {
  TempDir dir;
  WriteGzip(dir.str("train-images-idx3-ubyte.gz"), IdxImages(5, 3, 2));
  WriteBytes(dir.str("train-labels-idx1-ubyte"), IdxLabels({0, 2, 1, 2, 0}));
  auto set = LoadIdxDir(dir.path().string(), "train");
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  ExpectSyntheticIdx(*set);

  auto missing = LoadIdxDir(dir.path().string(), "t10k");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(missing.status().message(), "IDX directory '" + dir.path().string() +
                                            "' has neither 't10k-images-idx3-ubyte' nor "
                                            "'t10k-images-idx3-ubyte.gz'");
}

TEST(IdxTest, BadMagicNamesFileAndBothValues) {
  TempDir dir;
  WriteBytes(dir.str("images"), IdxImages(2, 2, 2, 0x801));
  WriteBytes(dir.str("labels"), IdxLabels({0, 1}));
  auto set = LoadIdx(dir.str("images"), dir.str("labels"));
  ASSERT_FALSE(set.ok());
  EXPECT_EQ(set.status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(set.status().message(),
            "IDX file '" + dir.str("images") +
                "': bad magic number 0x00000801, expected 0x00000803 (IDX ubyte images, 3 "
                "dimensions)");

  WriteBytes(dir.str("images"), IdxImages(2, 2, 2));
  WriteBytes(dir.str("labels"), IdxLabels({0, 1}, 0x803));
  auto labels = LoadIdx(dir.str("images"), dir.str("labels"));
  ASSERT_FALSE(labels.ok());
  EXPECT_EQ(labels.status().message(),
            "IDX file '" + dir.str("labels") +
                "': bad magic number 0x00000803, expected 0x00000801 (IDX ubyte labels, 1 "
                "dimension)");
}

TEST(IdxTest, MismatchedCountsNameBothFiles) {
  TempDir dir;
  WriteBytes(dir.str("images"), IdxImages(3, 2, 2));
  WriteBytes(dir.str("labels"), IdxLabels({0, 1}));
  auto set = LoadIdx(dir.str("images"), dir.str("labels"));
  ASSERT_FALSE(set.ok());
  EXPECT_EQ(set.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(set.status().message(), "IDX label file '" + dir.str("labels") +
                                        "' has 2 labels, expected 3 (the image count of '" +
                                        dir.str("images") + "')");
}

TEST(IdxTest, TruncatedDataAndOutOfRangeLabelsAreErrors) {
  TempDir dir;
  std::string images = IdxImages(3, 2, 2);
  images.resize(images.size() - 5);
  WriteBytes(dir.str("short"), images);
  WriteBytes(dir.str("labels"), IdxLabels({0, 1, 5}));
  auto truncated = LoadIdx(dir.str("short"), dir.str("labels"));
  ASSERT_FALSE(truncated.ok());
  EXPECT_EQ(
      truncated.status().message(),
      "IDX file '" + dir.str("short") + "' is truncated: expected 12 bytes of pixel data, found 7");

  WriteBytes(dir.str("images"), IdxImages(3, 2, 2));
  auto range = LoadIdx(dir.str("images"), dir.str("labels"), {"a", "b", "c"});
  ASSERT_FALSE(range.ok());
  EXPECT_EQ(range.status().message(),
            "IDX label file '" + dir.str("labels") +
                "': label 5 at index 2 is out of range, expected < 3 classes");

  auto missing = LoadIdx(dir.str("nope"), dir.str("labels"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(missing.status().message(), "cannot open IDX file '" + dir.str("nope") + "'");
}

// Found by tests/fuzz/fuzz_idx: a 16-byte header announcing 2^18 images of 64x64 made the
// loader allocate (and zero) 1 GiB before finding the file short. The file's size bounds what
// the header may announce, checked before any allocation.
TEST(IdxTest, HeaderAnnouncingMoreThanTheFileHoldsIsRefusedBeforeAllocating) {
  TempDir dir;
  const std::string header = IdxImages(0, 64, 64).substr(0, 4) + dtrain::testing::Be32(1u << 18) +
                             dtrain::testing::Be32(64) + dtrain::testing::Be32(64);
  WriteBytes(dir.str("labels"), IdxLabels({}));
  WriteGzip(dir.str("images.gz"), header);
  const uintmax_t gz_bytes = fs::file_size(dir.str("images.gz"));
  auto gz = LoadIdx(dir.str("images.gz"), dir.str("labels"));
  ASSERT_FALSE(gz.ok());
  EXPECT_EQ(gz.status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(gz.status().message(),
            "IDX file '" + dir.str("images.gz") +
                "' is truncated: expected 1073741824 bytes of pixel data, more than a gzip file "
                "of " +
                std::to_string(gz_bytes) + " bytes can hold");

  WriteBytes(dir.str("images"), header);
  auto plain = LoadIdx(dir.str("images"), dir.str("labels"));
  ASSERT_FALSE(plain.ok());
  EXPECT_EQ(plain.status().message(), "IDX file '" + dir.str("images") +
                                          "' is truncated: expected 1073741824 bytes of pixel "
                                          "data, found 0");

  WriteBytes(dir.str("images"), IdxImages(2, 1, 1));
  WriteBytes(dir.str("labels"), dtrain::testing::Be32(0x801) + dtrain::testing::Be32(2));
  auto labels = LoadIdx(dir.str("images"), dir.str("labels"));
  ASSERT_FALSE(labels.ok());
  EXPECT_EQ(labels.status().message(), "IDX file '" + dir.str("labels") +
                                           "' is truncated: expected 2 bytes of labels, found 0");
}

TEST(IdxTest, RealFashionMnistTrainSet) {
  const std::string dir = "/usr/share/datasets/fashion-mnist";
  if (!fs::exists(dir + "/train-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << "Fashion-MNIST is not installed (Debian package dataset-fashion-mnist)";
  }
  auto set = LoadIdxDir(dir, "train");
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  EXPECT_EQ(set->size(), 60000u);
  EXPECT_EQ(set->height, 28);
  EXPECT_EQ(set->width, 28);
  EXPECT_EQ(set->channels, 1);
  EXPECT_EQ(set->pixels.size(), 60000u * 28 * 28);
  EXPECT_EQ(set->class_names, FashionMnistClassNames());
  std::vector<size_t> counts(10, 0);
  for (int32_t l : set->labels) {
    ASSERT_GE(l, 0);
    ASSERT_LT(l, 10);
    ++counts[l];
  }
  for (size_t c : counts) EXPECT_EQ(c, 6000u);
}

}  // namespace
}  // namespace dtrain::data
