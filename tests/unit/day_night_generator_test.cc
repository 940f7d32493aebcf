// Tests for runtime/data/day_night_generator.cc.
#include "runtime/data/images/day_night_generator.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "runtime/data/images/image_set.h"
#include "tests/support/temp_dir.h"

namespace dtrain::data {
namespace {

namespace fs = std::filesystem;

using dtrain::testing::TempDir;

std::vector<std::string> SortedFiles(const std::string& dir) {
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir)) files.push_back(e.path().filename().string());
  std::sort(files.begin(), files.end());
  return files;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

constexpr int kCount = 80;
constexpr int kSize = 48;

DayNightOptions SmallSet(const std::string& out_dir, uint64_t seed = 5) {
  DayNightOptions options;
  options.out_dir = out_dir;
  options.count = kCount;
  options.size = kSize;
  options.seed = seed;
  return options;
}

TEST(DayNightGeneratorTest, WritesDecodablePngsPerClassAtomically) {
  TempDir dir;
  const std::string out = dir.str("set");
  auto report = GenerateDayNight(SmallSet(out));
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->day, kCount / 2);
  EXPECT_EQ(report->night, kCount / 2);
  EXPECT_GT(report->hard_cases, 0);
  EXPECT_LT(report->hard_cases, kCount / 3);
  if (fs::exists(DayNightOptions().photo_dir + "/building.jpg")) {
    EXPECT_GT(report->photos_used, 3);
  }

  EXPECT_EQ(SortedFiles(out), (std::vector<std::string>{"day", "night"}));
  EXPECT_EQ(SortedFiles(out + "/day").size(), static_cast<size_t>(kCount / 2));
  EXPECT_EQ(SortedFiles(out + "/night").size(), static_cast<size_t>(kCount / 2));
  EXPECT_EQ(SortedFiles(out + "/day").front(), "day_00000.png");
  // No temporary directory is left next to the output.
  EXPECT_EQ(SortedFiles(dir.str("")), std::vector<std::string>{"set"});

  // Every file decodes at its native size through the ImageFolder loader.
  ImageFolderOptions load;
  load.root = out;
  load.height = kSize;
  load.width = kSize;
  auto set = LoadImageFolder(load);
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  EXPECT_EQ(set->size(), static_cast<size_t>(kCount));
  EXPECT_EQ(set->skipped, 0u);
  EXPECT_EQ(set->class_names, (std::vector<std::string>{"day", "night"}));

  // A second run on an existing directory fails and leaves it alone.
  auto again = GenerateDayNight(SmallSet(out));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), StatusCode::kAlreadyExists);
  EXPECT_NE(again.status().message().find(out), std::string::npos);
  EXPECT_EQ(SortedFiles(out + "/day").size(), static_cast<size_t>(kCount / 2));
  EXPECT_EQ(SortedFiles(dir.str("")), std::vector<std::string>{"set"});
}

TEST(DayNightGeneratorTest, SameSeedGivesByteIdenticalFiles) {
  TempDir dir;
  ASSERT_TRUE(GenerateDayNight(SmallSet(dir.str("a"), 9)).ok());
  ASSERT_TRUE(GenerateDayNight(SmallSet(dir.str("b"), 9)).ok());
  ASSERT_TRUE(GenerateDayNight(SmallSet(dir.str("c"), 10)).ok());
  size_t differing = 0;
  for (const char* cls : {"day", "night"}) {
    const std::string sub = std::string("/") + cls + "/";
    const auto files = SortedFiles(dir.str("a") + sub);
    ASSERT_EQ(files, SortedFiles(dir.str("b") + sub));
    for (const auto& f : files) {
      EXPECT_EQ(ReadFile(dir.str("a") + sub + f), ReadFile(dir.str("b") + sub + f)) << f;
      if (ReadFile(dir.str("a") + sub + f) != ReadFile(dir.str("c") + sub + f)) ++differing;
    }
  }
  EXPECT_EQ(differing, static_cast<size_t>(kCount));  // another seed, other images
}

TEST(DayNightGeneratorTest, WorksWithoutPhotosAndRejectsBadOptions) {
  TempDir dir;
  DayNightOptions options;
  options.out_dir = dir.str("procedural");
  options.count = 5;
  options.size = 32;
  options.photo_dir = dir.str("no-photos-here");
  auto report = GenerateDayNight(options);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->day + report->night, 5);
  EXPECT_EQ(report->photos_used, 0);

  options.out_dir = dir.str("x");
  options.count = 1;
  EXPECT_EQ(GenerateDayNight(options).status().code(), StatusCode::kInvalidArgument);
  options.count = 4;
  options.size = 4;
  EXPECT_EQ(GenerateDayNight(options).status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(options.out_dir));
}

// ---------------------------------------------------------------------------------------------
// Brightness alone must not separate the classes.

struct Features {
  double brightness = 0;    // mean of (r + g + b) / 3 over the image
  double top_bright = 0;    // same over the top 20% of rows
  double top_blue_red = 0;  // (mean b + 1) / (mean r + 1) over the top 20% of rows
  double points = 0;        // tiny bright isolated pixels (stars) in the upper 60%
};

Features Measure(const uint8_t* px, int size) {
  auto luma = [&](int x, int y) {
    const uint8_t* p = px + (static_cast<size_t>(y) * size + x) * 3;
    return (p[0] + p[1] + p[2]) / 3.0;
  };
  Features f;
  double r = 0, b = 0;
  const int top_rows = size / 5;
  for (int y = 0; y < size; ++y) {
    for (int x = 0; x < size; ++x) {
      const double l = luma(x, y);
      f.brightness += l;
      if (y < top_rows) {
        f.top_bright += l;
        r += px[(static_cast<size_t>(y) * size + x) * 3];
        b += px[(static_cast<size_t>(y) * size + x) * 3 + 2];
      }
      if (y > 0 && x > 0 && x + 1 < size && y < size * 3 / 5) {
        double around = 0;
        for (int dy = -1; dy <= 1; ++dy)
          for (int dx = -1; dx <= 1; ++dx)
            if (dx || dy) around += luma(x + dx, y + dy);
        if (l > 70 && l > around / 8 + 50) f.points += 1;
      }
    }
  }
  const double top_n = static_cast<double>(top_rows) * size;
  f.brightness /= static_cast<double>(size) * size;
  f.top_bright /= top_n;
  f.top_blue_red = (b / top_n + 1) / (r / top_n + 1);
  return f;
}

// Best accuracy of a single threshold on `value` (either direction) for labels 0/1.
double BestThresholdAccuracy(std::vector<std::pair<double, int>> v) {
  std::sort(v.begin(), v.end());
  const double n = static_cast<double>(v.size());
  size_t ones_total = 0;
  for (const auto& e : v) ones_total += e.second;
  // Predict 1 above the cut: correct = zeros below + ones above.
  double best = std::max(ones_total, v.size() - ones_total) / n;
  size_t zeros_below = 0, ones_below = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    (v[i].second ? ones_below : zeros_below) += 1;
    if (i + 1 < v.size() && v[i + 1].first == v[i].first) continue;
    const double above_ones = static_cast<double>(ones_total - ones_below);
    const double above_zeros = static_cast<double>(v.size() - i - 1) - above_ones;
    best = std::max(best, (zeros_below + above_ones) / n);
    best = std::max(best, (ones_below + above_zeros) / n);
  }
  return best;
}

TEST(DayNightGeneratorTest, BrightnessAloneIsNotEnough) {
  TempDir dir;
  ASSERT_TRUE(GenerateDayNight(SmallSet(dir.str("set"))).ok());
  ImageFolderOptions load;
  load.root = dir.str("set");
  load.height = kSize;
  load.width = kSize;
  auto set = LoadImageFolder(load);
  ASSERT_TRUE(set.ok()) << set.status().ToString();

  std::vector<std::pair<double, int>> brightness, top_bright, blue_red, points;
  double mean[2][4] = {};
  int n[2] = {};
  for (size_t i = 0; i < set->size(); ++i) {
    const Features f = Measure(set->image(i), kSize);
    const int label = set->labels[i];
    brightness.emplace_back(f.brightness, label);
    top_bright.emplace_back(f.top_bright, label);
    blue_red.emplace_back(f.top_blue_red, label);
    points.emplace_back(f.points, label);
    const double values[4] = {f.brightness, f.top_bright, f.top_blue_red, f.points};
    for (int k = 0; k < 4; ++k) mean[label][k] += values[k];
    ++n[label];
  }
  const double acc_brightness = BestThresholdAccuracy(brightness);
  std::printf("feature              day mean  night mean  best-threshold accuracy\n");
  const char* names[4] = {"mean brightness", "top-rows brightness", "top-rows blue/red",
                          "isolated points"};
  const double acc[4] = {acc_brightness, BestThresholdAccuracy(top_bright),
                         BestThresholdAccuracy(blue_red), BestThresholdAccuracy(points)};
  for (int k = 0; k < 4; ++k) {
    std::printf("%-20s %9.2f %11.2f %24.3f\n", names[k], mean[0][k] / n[0], mean[1][k] / n[1],
                acc[k]);
  }
  EXPECT_LT(acc_brightness, 0.9) << "day and night must differ in more than mean brightness";
  EXPECT_GT(acc_brightness, 0.55) << "day should still tend to be brighter than night";
}

// Issue 10: generate_count 2147483647 overflowed (count + 1) / 2 and wrote 1 image.
TEST(DayNightGeneratorTest, SplitIsExactUpToIntMax) {
  const int max = std::numeric_limits<int>::max();
  EXPECT_EQ(SplitDayNight(max).day, max / 2 + 1);
  EXPECT_EQ(SplitDayNight(max).night, max / 2);
  EXPECT_EQ(SplitDayNight(5).day, 3);
  EXPECT_EQ(SplitDayNight(5).night, 2);
  EXPECT_EQ(SplitDayNight(4).day, 2);
}

// Issue 10: a killed generation left "<out>.tmp-<pid>/" behind for good.
TEST(DayNightGeneratorTest, TempDirsOfKilledRunsAreRemovedAndLiveOnesKept) {
  TempDir dir;
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) ::_exit(0);
  ASSERT_EQ(::waitpid(child, nullptr, 0), child);  // its pid is now dead
  const std::string dead = dir.str("set.tmp-" + std::to_string(child));
  const std::string live = dir.str("set.tmp-" + std::to_string(::getppid()));
  const std::string other = dir.str("other.tmp-" + std::to_string(child));
  for (const std::string& d : {dead, live, other}) {
    std::filesystem::create_directories(d + "/day");
    std::ofstream(d + "/day/x.png") << "half-written";
  }
  DayNightOptions options;
  options.out_dir = dir.str("set");
  options.count = 4;
  options.size = 16;
  auto report = GenerateDayNight(options);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_FALSE(std::filesystem::exists(dead));
  EXPECT_TRUE(std::filesystem::exists(live)) << "a live pid's run may be in progress";
  EXPECT_TRUE(std::filesystem::exists(other)) << "another output's temp dir is not ours";
}

// Issue 10 item 7: generate_count 1000000000 wrote about 340 images/s until the disk was full.
TEST(DayNightGeneratorTest, RefusesMoreThanTheFreeDiskBeforeWritingAnything) {
  TempDir dir;
  DayNightOptions options;
  options.out_dir = dir.str("set");
  options.count = 2000000000;
  options.size = 4096;  // up to 50 MB each: 10^17 bytes in all, more than any disk here
  auto report = GenerateDayNight(options);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(report.status().message().find("2000000000 images of 4096x4096 may take up to "),
            std::string::npos)
      << report.status().message();
  EXPECT_NE(report.status().message().find("bytes free where '" + options.out_dir + "'"),
            std::string::npos)
      << report.status().message();
  EXPECT_TRUE(SortedFiles(dir.str("")).empty()) << "nothing written, no temporary directory";
}

// The bound the generator (and the spec's estimate) uses holds for what it really writes.
TEST(DayNightGeneratorTest, BytesUpperBoundCoversTheFilesWritten) {
  TempDir dir;
  const std::string out = dir.str("set");
  ASSERT_TRUE(GenerateDayNight(SmallSet(out)).ok());
  uintmax_t written = 0;
  for (const auto& e : fs::recursive_directory_iterator(out)) {
    if (e.is_regular_file()) written += e.file_size();
  }
  EXPECT_GT(written, 0u);
  EXPECT_LE(static_cast<double>(written), DayNightBytesUpperBound(kCount, kSize));
}

}  // namespace
}  // namespace dtrain::data
