// TensorBoard event files: CRC-32C and TFRecord framing against published vectors, and whole
// files read back by an independent reader (tests/e2e/read_tfevents.py: python3-protobuf with
// TensorFlow's field numbers, python3-crc32c checking every CRC).
#include "workers/trainer/tensorboard_writer.h"

#include <gtest/gtest.h>
#include <stb_image.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"
#include "workers/trainer/progress.h"
#include "workers/trainer/run_directories.h"
#include "workers/trainer/tensorboard_record.h"

namespace dtrain::trainer {
namespace {

namespace fs = std::filesystem;
using dtrain::testing::TempDir;

struct Command {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

Command RunShell(const std::string& command) {
  Command result;
  std::FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) result.output.append(buffer, n);
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

// Every event file under `dir`, as the independent reader parsed it.
std::vector<nlohmann::json> ReadEvents(const std::string& dir) {
  const Command read =
      RunShell(DTRAIN_PYTHON3 " " DTRAIN_SOURCE_DIR "/tests/e2e/read_tfevents.py " + dir);
  EXPECT_EQ(read.exit_code, 0) << read.output
                               << "\n(needs python3-protobuf, python3-crc32c and protoc: "
                                  "deploy/install-deps.sh installs them)";
  std::vector<nlohmann::json> files;
  std::istringstream lines(read.output);
  std::string line;
  while (std::getline(lines, line)) files.push_back(nlohmann::json::parse(line));
  return files;
}

// tag -> [(step, value)] of every scalar in `file`.
std::map<std::string, std::vector<std::pair<int64_t, double>>> Scalars(const nlohmann::json& file) {
  std::map<std::string, std::vector<std::pair<int64_t, double>>> scalars;
  for (const auto& event : file["events"]) {
    if (!event.contains("values")) continue;
    for (const auto& v : event["values"]) {
      if (v.contains("simple_value")) {
        scalars[v["tag"]].emplace_back(event["step"].get<int64_t>(), v["simple_value"]);
      }
    }
  }
  return scalars;
}

std::string Base64Decode(const std::string& text) {
  static const std::string kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t bits = 0;
  int count = 0;
  for (char c : text) {
    const size_t at = kAlphabet.find(c);
    if (at == std::string::npos) break;  // '=' padding
    bits = (bits << 6) | static_cast<uint32_t>(at);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out.push_back(static_cast<char>((bits >> count) & 0xFF));
    }
  }
  return out;
}

TEST(TensorBoardRecordTest, Crc32cMatchesPublishedVectors) {
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);              // the CRC catalogue's check value
  EXPECT_EQ(Crc32c(std::string(32, '\0')), 0x8A9136AAu);    // RFC 3720 B.4
  EXPECT_EQ(Crc32c(std::string(32, '\xff')), 0x62A8AB43u);  // RFC 3720 B.4
  EXPECT_EQ(Crc32c(""), 0u);
}

TEST(TensorBoardRecordTest, FrameHoldsLengthDataAndTheirMaskedCrcs) {
  const std::string record = FrameTfRecord("abc");
  ASSERT_EQ(record.size(), 8u + 4u + 3u + 4u);
  EXPECT_EQ(record.substr(0, 8), std::string("\x03\0\0\0\0\0\0\0", 8));
  EXPECT_EQ(record.substr(12, 3), "abc");
  auto u32 = [&](size_t at) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(record[at + i]);
    return v;
  };
  EXPECT_EQ(u32(8), MaskCrc32c(Crc32c(record.substr(0, 8))));
  EXPECT_EQ(u32(15), MaskCrc32c(Crc32c("abc")));
  // The mask is a rotation plus a constant, never the identity.
  EXPECT_EQ(MaskCrc32c(0), 0xA282EAD8u);
  EXPECT_EQ(MaskCrc32c(1u << 15), 1u + 0xA282EAD8u);
}

TEST(TensorBoardWriterTest, ScalarsAndImagesReadBackByAnIndependentReader) {
  TempDir temp;
  SummaryImage image;
  image.width = 3;
  image.height = 2;
  image.channels = 3;
  for (int i = 0; i < 3 * 2 * 3; ++i) image.pixels.push_back(static_cast<uint8_t>(i * 13));
  std::string path;
  {
    auto writer = TensorBoardWriter::Open(temp.str("tb"));
    ASSERT_OK(writer);
    path = (*writer)->path();
    EXPECT_NE(fs::path(path).filename().string().find("tfevents"), std::string::npos);
    for (int step = 1; step <= 3; ++step) {
      ASSERT_OK((*writer)->AddScalar("train/loss", step, 1.0 / step));
      ASSERT_OK((*writer)->AddScalar("train/learning_rate", step, 0.01));
    }
    ASSERT_OK((*writer)->AddImage("samples/first", 3, image));
  }
  const std::vector<nlohmann::json> files = ReadEvents(temp.str("tb"));
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0]["path"], path);
  const nlohmann::json& events = files[0]["events"];
  ASSERT_EQ(events.size(), 1u + 6u + 1u);
  EXPECT_EQ(events[0]["file_version"], "brain.Event:2");
  auto scalars = Scalars(files[0]);
  ASSERT_EQ(scalars["train/loss"].size(), 3u);
  for (int step = 1; step <= 3; ++step) {
    EXPECT_EQ(scalars["train/loss"][step - 1].first, step);
    EXPECT_FLOAT_EQ(scalars["train/loss"][step - 1].second, 1.0f / step);
    EXPECT_FLOAT_EQ(scalars["train/learning_rate"][step - 1].second, 0.01f);
  }
  const nlohmann::json& img = events[7]["values"][0];
  EXPECT_EQ(img["tag"], "samples/first");
  EXPECT_EQ(events[7]["step"], 3);
  EXPECT_EQ(img["image"]["width"], 3);
  EXPECT_EQ(img["image"]["height"], 2);
  EXPECT_EQ(img["image"]["colorspace"], 3);
  const std::string png = Base64Decode(img["image"]["png_base64"]);
  int w = 0, h = 0, c = 0;
  unsigned char* decoded = stbi_load_from_memory(reinterpret_cast<const unsigned char*>(png.data()),
                                                 static_cast<int>(png.size()), &w, &h, &c, 0);
  ASSERT_NE(decoded, nullptr) << "the image is not a PNG";
  EXPECT_EQ(std::vector<uint8_t>(decoded, decoded + w * h * c), image.pixels);
  stbi_image_free(decoded);
}

TEST(TensorBoardWriterTest, TheReaderRefusesAFileWithOneByteChanged) {
  TempDir temp;
  std::string path;
  {
    auto writer = TensorBoardWriter::Open(temp.str("tb"));
    ASSERT_OK(writer);
    ASSERT_OK((*writer)->AddScalar("train/loss", 1, 0.5));
    path = (*writer)->path();
  }
  std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
  file.seekg(-6, std::ios::end);  // inside the last record's data
  char byte;
  file.read(&byte, 1);
  file.seekp(-6, std::ios::end);
  byte ^= 0x20;
  file.write(&byte, 1);
  file.close();
  const Command read =
      RunShell(DTRAIN_PYTHON3 " " DTRAIN_SOURCE_DIR "/tests/e2e/read_tfevents.py " + path);
  EXPECT_EQ(read.exit_code, 1) << read.output;
  EXPECT_NE(read.output.find("data CRC mismatch"), std::string::npos) << read.output;
}

TEST(TensorBoardWriterTest, BadImagesAndTagsAreRefusedNamingWhatWasExpected) {
  TempDir temp;
  auto writer = TensorBoardWriter::Open(temp.str("tb"));
  ASSERT_OK(writer);
  SummaryImage empty;
  Status s = (*writer)->AddImage("x", 1, empty);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "TensorBoard image 'x': expected sides in [1, 4096], got 0x0");
  SummaryImage short_pixels;
  short_pixels.width = 2;
  short_pixels.height = 2;
  short_pixels.channels = 1;
  short_pixels.pixels.resize(3);
  s = (*writer)->AddImage("x", 1, short_pixels);
  EXPECT_EQ(s.message(),
            "TensorBoard image 'x': expected 4 pixel bytes (width x height x channels), got 3");
  short_pixels.channels = 5;
  EXPECT_EQ((*writer)->AddImage("x", 1, short_pixels).message(),
            "TensorBoard image 'x': expected 1 to 4 channels, got 5");
  EXPECT_EQ((*writer)->AddScalar("", 1, 1.0).message(),
            "TensorBoard tag '': expected 1 to 256 bytes, got 0");
  EXPECT_EQ((*writer)->AddScalar(std::string(300, 'a'), 1, 1.0).code(),
            StatusCode::kInvalidArgument);
}

TEST(TensorBoardWriterTest, ADirectoryThatCannotBeMadeIsNamed) {
  TempDir temp;
  std::ofstream(temp.str("file")) << "x";
  auto writer = TensorBoardWriter::Open(temp.str("file/tb"));
  ASSERT_FALSE(writer.ok());
  EXPECT_NE(writer.status().message().find("cannot create TensorBoard directory '" +
                                           temp.str("file/tb") + "'"),
            std::string::npos)
      << writer.status().ToString();
}

// What the trainer reports reaches the event file: every step's loss, learning rate, throughput,
// all-reduce and backward time and task statistics, the epoch's validation metrics, a task's
// picture and the test metrics, at the step they follow.
TEST(TensorBoardWriterTest, ProgressReporterWritesTheTrainersFigures) {
  TempDir temp;
  std::FILE* json_out = std::tmpfile();
  {
    ProgressOptions options;
    options.job = "tb";
    options.human = HumanProgress::kNone;
    options.json_out = json_out;
    options.tensorboard_dir = temp.str("out/tensorboard");
    ProgressReporter progress(options);
    for (int step = 1; step <= 2; ++step) {
      StepReport s;
      s.global_step = step;
      s.steps_per_epoch = 2;
      s.loss = 2.0 / step;
      s.lr = 0.1;
      s.samples_per_s = 100 * step;
      s.comm_wait_s = 0.001 * step;
      s.backward_s = 0.01 * step;
      s.metrics["active_triplets"] = 0.25 * step;
      progress.Step(s, /*print=*/false);
    }
    progress.Epoch(0, 1, 1.5, 3.0, {{"accuracy", 0.75}, {"note", "text is not a curve"}}, "");
    SummaryImage picture;
    picture.width = 2;
    picture.height = 1;
    picture.pixels = {255, 0, 0, 0, 0, 255};
    progress.Image("validation/detections_0", picture);
    progress.Finished({{"test", {{"accuracy", 0.5}}}});
  }
  std::fclose(json_out);
  const std::vector<nlohmann::json> files = ReadEvents(temp.str("out/tensorboard"));
  ASSERT_EQ(files.size(), 1u);
  auto scalars = Scalars(files[0]);
  using Points = std::vector<std::pair<int64_t, double>>;
  auto near = [](const Points& got, const Points& want) {
    if (got.size() != want.size()) return false;
    for (size_t i = 0; i < got.size(); ++i) {
      if (got[i].first != want[i].first) return false;
      if (std::abs(got[i].second - want[i].second) > 1e-6 * std::max(1.0, std::abs(want[i].second)))
        return false;
    }
    return true;
  };
  EXPECT_TRUE(near(scalars["train/loss"], {{1, 2.0}, {2, 1.0}}));
  EXPECT_TRUE(near(scalars["train/learning_rate"], {{1, 0.1}, {2, 0.1}}));
  EXPECT_TRUE(near(scalars["train/samples_per_s"], {{1, 100}, {2, 200}}));
  EXPECT_TRUE(near(scalars["train/allreduce_wait_s"], {{1, 0.001}, {2, 0.002}}));
  EXPECT_TRUE(near(scalars["train/backward_s"], {{1, 0.01}, {2, 0.02}}));
  EXPECT_TRUE(near(scalars["train/active_triplets"], {{1, 0.25}, {2, 0.5}}));
  EXPECT_TRUE(near(scalars["epoch/train_loss"], {{2, 1.5}}));
  EXPECT_TRUE(near(scalars["validation/accuracy"], {{2, 0.75}}));
  EXPECT_TRUE(near(scalars["test/accuracy"], {{2, 0.5}}));
  EXPECT_EQ(scalars.count("validation/note"), 0u);
  int pictures = 0;
  for (const auto& event : files[0]["events"]) {
    if (!event.contains("values")) continue;
    for (const auto& v : event["values"]) {
      if (!v.contains("image")) continue;
      ++pictures;
      EXPECT_EQ(v["tag"], "validation/detections_0");
      EXPECT_EQ(event["step"], 2);
      EXPECT_EQ(v["image"]["width"], 2);
      EXPECT_EQ(v["image"]["height"], 1);
    }
  }
  EXPECT_EQ(pictures, 1);
}

// Only rank 0 writes events: another rank's pictures go nowhere and leave no file.
TEST(TensorBoardWriterTest, ProgressReporterOfAnotherRankWritesNoPictures) {
  TempDir temp;
  std::FILE* json_out = std::tmpfile();
  {
    ProgressOptions options;
    options.job = "tb";
    options.rank = 1;
    options.world_size = 2;
    options.human = HumanProgress::kNone;
    options.json_out = json_out;
    options.tensorboard_dir = temp.str("out/tensorboard");
    ProgressReporter progress(options);
    SummaryImage picture;
    picture.width = 1;
    picture.height = 1;
    picture.pixels = {1, 2, 3};
    progress.Image("validation/detections_0", picture);
  }
  std::fclose(json_out);
  EXPECT_FALSE(fs::exists(temp.str("out/tensorboard")) &&
               !fs::is_empty(temp.str("out/tensorboard")));
}

// A fresh run removes an earlier run's event files (their curves would mix with its own); a
// resumed run keeps them and adds its own file.
TEST(TensorBoardWriterTest, AFreshRunRemovesEarlierEventFilesAResumeKeepsThem) {
  TempDir temp;
  const std::string out = temp.str("run");
  const std::string events = out + "/" + kTensorBoardSubdir;
  fs::create_directories(events);
  std::ofstream(events + "/" + kEventFilePrefix + "1.host.1") << "old";
  std::ofstream(events + "/notes.txt") << "mine";
  {
    auto resumed = RunDirectories::Claim(out, out + "/ckpt", /*resume=*/true);
    ASSERT_OK(resumed);
    EXPECT_TRUE(fs::exists(events + "/" + kEventFilePrefix + "1.host.1"));
  }
  auto fresh = RunDirectories::Claim(out, out + "/ckpt", /*resume=*/false);
  ASSERT_OK(fresh);
  EXPECT_FALSE(fs::exists(events + "/" + kEventFilePrefix + "1.host.1"));
  EXPECT_TRUE(fs::exists(events + "/notes.txt"));
}

}  // namespace
}  // namespace dtrain::trainer
