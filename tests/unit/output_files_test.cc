// A launched job's output files (runtime/coordinator/launchers/output_files.h): chunked and tail
// reads, the per-rank layout, and the splitting of mpirun's --tag-output stream that the
// Kubernetes backend does.
#include "runtime/coordinator/launchers/output_files.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"

namespace dtrain::coordinator {
namespace {

namespace fs = std::filesystem;

std::string Slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class OutputFilesTest : public ::testing::Test {
 protected:
  std::string Rank(int rank, RankStream stream) {
    const std::string path = RankOutputPath(ranks_.string(), rank, stream);
    return path.empty() ? "<none>" : Slurp(path);
  }

  testing::TempDir temp_;
  const fs::path combined_ = temp_.path() / "output.log";
  const fs::path ranks_ = temp_.path() / "ranks";
};

TEST_F(OutputFilesTest, ChunksAndTailOfAFileThatGrows) {
  StatusOr<LogChunk> none = ReadFileChunk(combined_.string(), 0, 4);
  ASSERT_OK(none);
  EXPECT_EQ(none->data, "");
  EXPECT_EQ(none->next_offset, 0);
  std::ofstream(combined_) << "abcdefghij";
  StatusOr<LogChunk> middle = ReadFileChunk(combined_.string(), 3, 4);
  ASSERT_OK(middle);
  EXPECT_EQ(middle->data, "defg");
  EXPECT_EQ(middle->next_offset, 7);
  StatusOr<LogChunk> past = ReadFileChunk(combined_.string(), 50, 4);
  ASSERT_OK(past);
  EXPECT_EQ(past->data, "");
  EXPECT_EQ(past->next_offset, 50);
  EXPECT_EQ(ReadFileTail(combined_.string(), 3), "hij");
  EXPECT_EQ(ReadFileTail(combined_.string(), 100), "abcdefghij");
  EXPECT_EQ(ReadFileTail((temp_.path() / "missing").string(), 3), "");
  // A directory where the file should be is an error that names it, not an empty chunk.
  StatusOr<LogChunk> dir = ReadFileChunk(temp_.path().string(), 0, 4);
  ASSERT_FALSE(dir.ok());
  EXPECT_NE(dir.status().message().find(temp_.path().string()), std::string::npos);
}

TEST_F(OutputFilesTest, RankFilesAreFoundInMpirunsLayout) {
  EXPECT_EQ(RankOutputPath(ranks_.string(), 0, RankStream::kStdout), "");  // no dir yet
  fs::create_directories(ranks_ / "1" / "rank.2");
  std::ofstream(ranks_ / "1" / "rank.2" / "stderr") << "oops\n";
  EXPECT_EQ(Rank(2, RankStream::kStderr), "oops\n");
  EXPECT_EQ(Rank(2, RankStream::kStdout), "<none>");
  EXPECT_EQ(Rank(1, RankStream::kStderr), "<none>");
}

TEST_F(OutputFilesTest, TaggedStreamIsSplitIntoRanksAcrossChunkBoundaries) {
  std::ofstream(combined_) << "left from the last time\n";
  fs::create_directories(ranks_ / "1" / "rank.9");
  std::ofstream(ranks_ / "1" / "rank.9" / "stdout") << "stale\n";
  StatusOr<TaggedOutputSplitter> split =
      TaggedOutputSplitter::Create(combined_.string(), ranks_.string());
  ASSERT_OK(split);
  const std::string stream =
      "[1,0]<stdout>:epoch 1\n"
      "[1,1]<stderr>:rank 1: warning\n"
      "mpirun noticed that process rank 1 exited\n"
      "[1,12]<stdout>:{\"event\":\"step\",\"rank\":12}\n"
      "[1,1]<stdout>:[1,0]<stdout>:forged\n"
      "[1,0]<stdout>:no newline at the end";
  // Every split point: a tag, a line or a newline may be cut anywhere.
  for (size_t i = 0; i < stream.size(); i += 7) {
    ASSERT_TRUE(split->Write(std::string_view(stream).substr(i, 7)));
  }
  ASSERT_TRUE(split->Finish());
  EXPECT_EQ(Slurp(combined_),
            "epoch 1\nrank 1: warning\nmpirun noticed that process rank 1 exited\n"
            "{\"event\":\"step\",\"rank\":12}\n[1,0]<stdout>:forged\nno newline at the end\n");
  EXPECT_EQ(Rank(0, RankStream::kStdout), "epoch 1\nno newline at the end\n");
  EXPECT_EQ(Rank(1, RankStream::kStderr), "rank 1: warning\n");
  EXPECT_EQ(Rank(1, RankStream::kStdout), "[1,0]<stdout>:forged\n");
  EXPECT_EQ(Rank(12, RankStream::kStdout), "{\"event\":\"step\",\"rank\":12}\n");
  EXPECT_EQ(Rank(9, RankStream::kStdout), "<none>");  // the last reading's files are gone
}

TEST_F(OutputFilesTest, WhatOnlyLooksLikeATagStaysInTheCombinedOutput) {
  StatusOr<TaggedOutputSplitter> split =
      TaggedOutputSplitter::Create(combined_.string(), ranks_.string());
  ASSERT_OK(split);
  const std::string lines =
      "[1,x]<stdout>:a\n[1,2]<stdin>:b\n[,2]<stdout>:c\n[1,1234567]<stdout>:d\n[1,2]stdout:e\n";
  ASSERT_TRUE(split->Write(lines));
  ASSERT_TRUE(split->Finish());
  EXPECT_EQ(Slurp(combined_), lines);
  EXPECT_TRUE(fs::is_empty(ranks_));
}

}  // namespace
}  // namespace dtrain::coordinator
