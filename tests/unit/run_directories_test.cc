// RunDirectories: one run per output_dir / checkpoint.dir, no symlinked directories, and a fresh
// run starts without an earlier run's files.
#include "workers/trainer/run_directories.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"

namespace dtrain::trainer {
namespace {

namespace fs = std::filesystem;
using dtrain::testing::TempDir;

// Before: two jobs with one output_dir both ran, interleaving metrics.jsonl and deleting each
// other's checkpoints.
TEST(RunDirectoriesTest, ASecondRunOnTheSameDirectoryIsRefusedNamingItAndTheHolder) {
  TempDir temp;
  const std::string out = temp.str("run"), ckpt = temp.str("run/checkpoints");
  auto first = RunDirectories::Claim(out, ckpt, /*resume=*/false);
  ASSERT_OK(first);
  auto second = RunDirectories::Claim(out, ckpt, /*resume=*/false);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(second.status().message(),
            "output_dir '" + out + "' is in use (pid " + std::to_string(::getpid()) + " holds " +
                out +
                "/LOCK); another run is writing there, and two runs must not share a "
                "directory: give this job its own output_dir");
  // Another output_dir with the same checkpoint.dir is refused too.
  auto third = RunDirectories::Claim(temp.str("other"), ckpt, /*resume=*/true);
  ASSERT_FALSE(third.ok());
  EXPECT_NE(third.status().message().find("checkpoint.dir '" + ckpt + "' is in use"),
            std::string::npos)
      << third.status().ToString();
  // Released with the first run.
  first = Internal("gone");
  EXPECT_OK(RunDirectories::Claim(out, ckpt, /*resume=*/true));
}

TEST(RunDirectoriesTest, CheckpointDirMayBeTheOutputDirItself) {
  TempDir temp;
  EXPECT_OK(RunDirectories::Claim(temp.str("run"), temp.str("run"), /*resume=*/false));
  EXPECT_OK(RunDirectories::Claim(temp.str("run"), temp.str("run/."), /*resume=*/false));
}

TEST(RunDirectoriesTest, ASymlinkAsTheDirectoryIsRefused) {
  TempDir temp;
  fs::create_directories(temp.str("elsewhere"));
  ASSERT_EQ(::symlink(temp.str("elsewhere").c_str(), temp.str("run").c_str()), 0);
  auto claim = RunDirectories::Claim(temp.str("run"), temp.str("ckpt"), false);
  ASSERT_FALSE(claim.ok());
  EXPECT_EQ(claim.status().message(),
            "output_dir '" + temp.str("run") +
                "' is a symbolic link; dtrain writes only into a real directory (give the "
                "link's target instead)");
  EXPECT_FALSE(fs::exists(temp.str("elsewhere/LOCK")));
  std::ofstream(temp.str("file")) << "x";
  auto file = RunDirectories::Claim(temp.str("real"), temp.str("file"), false);
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.status().message(),
            "checkpoint.dir '" + temp.str("file") + "' exists and is not a directory");
}

// Before: a resubmission into runs/<name> kept the earlier run's checkpoints and summary, so
// retention and --resume mixed the two runs.
TEST(RunDirectoriesTest, AFreshRunRemovesAnEarlierRunsFilesAResumeKeepsThem) {
  TempDir temp;
  const std::string out = temp.str("run"), ckpt = temp.str("run/checkpoints");
  fs::create_directories(ckpt);
  for (const char* name : {"summary.json", "model.pt", "metrics.jsonl", "notes.txt"}) {
    std::ofstream(fs::path(out) / name) << "old";
  }
  for (const char* name : {"ckpt-0000000010.pt", "ckpt-0000000020.pt.tmp-1", "keep.me"}) {
    std::ofstream(fs::path(ckpt) / name) << "old";
  }
  { ASSERT_OK(RunDirectories::Claim(out, ckpt, /*resume=*/true)); }
  EXPECT_TRUE(fs::exists(fs::path(ckpt) / "ckpt-0000000010.pt"));
  EXPECT_TRUE(fs::exists(fs::path(out) / "metrics.jsonl"));
  ASSERT_OK(RunDirectories::Claim(out, ckpt, /*resume=*/false));
  for (const char* gone :
       {"summary.json", "model.pt", "metrics.jsonl", "checkpoints/ckpt-0000000010.pt",
        "checkpoints/ckpt-0000000020.pt.tmp-1"}) {
    EXPECT_FALSE(fs::exists(fs::path(out) / gone)) << gone;
  }
  EXPECT_TRUE(fs::exists(fs::path(out) / "notes.txt"));
  EXPECT_TRUE(fs::exists(fs::path(ckpt) / "keep.me"));
}

}  // namespace
}  // namespace dtrain::trainer
