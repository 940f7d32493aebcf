// WriteFileAtomically, CommitTempFile and SyncDirectory (runtime/common/atomic_file.h): the
// contents and the exact mode land whatever the umask, an existing target is replaced whole,
// a failed write leaves the old target and no temporary file, and errors name the path.
#include "runtime/common/atomic_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>

#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"

namespace dtrain {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

// Sets the process umask for one scope.
class ScopedUmask {
 public:
  explicit ScopedUmask(mode_t mask) : old_(::umask(mask)) {}
  ~ScopedUmask() { ::umask(old_); }
  ScopedUmask(const ScopedUmask&) = delete;
  ScopedUmask& operator=(const ScopedUmask&) = delete;

 private:
  const mode_t old_;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << contents;
}

mode_t ModeOf(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

ino_t InodeOf(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return st.st_ino;
}

// File names in `dir`, so that a leftover temporary file shows up by name in a failure.
std::set<std::string> Listing(const fs::path& dir) {
  std::set<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    names.insert(entry.path().filename().string());
  }
  return names;
}

// A writer in the style of torch::save: it replaces the file it is handed (new inode, mode
// from the umask) instead of writing into the one WriteFileAtomically created.
Status ReplacingWriter(const std::string& temp_path, const std::string& contents) {
  fs::remove(temp_path);
  WriteFile(temp_path, contents);
  return Status::Ok();
}

class AtomicFileModeTest : public ::testing::TestWithParam<mode_t> {};

TEST_P(AtomicFileModeTest, ContentsAndExactModeWhateverTheUmask) {
  TempDir dir;
  ScopedUmask umask(GetParam());
  for (const mode_t mode : {mode_t{0600}, mode_t{0644}, mode_t{0640}, mode_t{0666}}) {
    SCOPED_TRACE(::testing::Message() << "mode 0" << std::oct << mode);
    const std::string path = dir.str("contents");
    ASSERT_OK(WriteFileAtomically(path, std::string("a\0b\n", 4), mode));
    EXPECT_EQ(ReadFile(path), std::string("a\0b\n", 4));
    EXPECT_EQ(ModeOf(path), mode);

    const std::string written = dir.str("callback");
    ASSERT_OK(WriteFileAtomically(
        written,
        [](const std::string& temp) -> Status {
          WriteFile(temp, "from the callback");
          return Status::Ok();
        },
        mode));
    EXPECT_EQ(ReadFile(written), "from the callback");
    EXPECT_EQ(ModeOf(written), mode);

    const std::string replaced = dir.str("replaced");
    ASSERT_OK(WriteFileAtomically(
        replaced, [](const std::string& temp) { return ReplacingWriter(temp, "replaced"); }, mode));
    EXPECT_EQ(ReadFile(replaced), "replaced");
    EXPECT_EQ(ModeOf(replaced), mode);
  }
  EXPECT_EQ(Listing(dir.path()), (std::set<std::string>{"callback", "contents", "replaced"}));
}

INSTANTIATE_TEST_SUITE_P(Umask, AtomicFileModeTest, ::testing::Values(mode_t{0}, mode_t{077}),
                         [](const ::testing::TestParamInfo<mode_t>& info) {
                           return info.param == 0 ? std::string("Umask000")
                                                  : std::string("Umask077");
                         });

TEST(AtomicFileTest, ReplacesAnExistingFileWhole) {
  TempDir dir;
  const std::string path = dir.str("target");
  WriteFile(path, "the old contents, longer than the new ones");
  ASSERT_EQ(::chmod(path.c_str(), 0600), 0);
  const ino_t old_inode = InodeOf(path);

  ASSERT_OK(WriteFileAtomically(path, "new", 0644));
  EXPECT_EQ(ReadFile(path), "new");
  EXPECT_EQ(ModeOf(path), 0644u);
  // Renamed over, not rewritten in place: a reader holding the old file keeps the old contents.
  EXPECT_NE(InodeOf(path), old_inode);

  ASSERT_OK(WriteFileAtomically(path, "", 0644));
  EXPECT_EQ(ReadFile(path), "");
  EXPECT_EQ(Listing(dir.path()), std::set<std::string>{"target"});
}

TEST(AtomicFileTest, FailingCallbackLeavesTheOldTargetAndNoTemporaryFile) {
  TempDir dir;
  const std::string path = dir.str("target");
  WriteFile(path, "old");
  ASSERT_EQ(::chmod(path.c_str(), 0640), 0);

  std::string handed;
  const Status s = WriteFileAtomically(
      path,
      [&](const std::string& temp) {
        handed = temp;
        WriteFile(temp, "half a new fi");
        return DataLoss("the writer gave up");
      },
      0600);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_NE(s.ToString().find("the writer gave up"), std::string::npos) << s.ToString();
  // The temporary file lies beside the target, so that the rename stays in one file system.
  EXPECT_EQ(fs::path(handed).parent_path(), dir.path());
  EXPECT_EQ(ReadFile(path), "old");
  EXPECT_EQ(ModeOf(path), 0640u);
  EXPECT_EQ(Listing(dir.path()), std::set<std::string>{"target"});
}

TEST(AtomicFileTest, FailingCallbackWithoutATargetCreatesNothing) {
  TempDir dir;
  EXPECT_FALSE(WriteFileAtomically(dir.str("target"), [](const std::string&) {
                 return Internal("no");
               }).ok());
  EXPECT_TRUE(Listing(dir.path()).empty());
}

TEST(AtomicFileTest, MissingDirectoryIsAnErrorNamingThePath) {
  TempDir dir;
  const std::string path = dir.str("missing/target");
  const Status s = WriteFileAtomically(path, "x");
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_NE(s.ToString().find(path), std::string::npos) << s.ToString();

  bool called = false;
  const Status c = WriteFileAtomically(path, [&](const std::string&) {
    called = true;
    return Status::Ok();
  });
  EXPECT_EQ(c.code(), StatusCode::kNotFound);
  EXPECT_NE(c.ToString().find(path), std::string::npos) << c.ToString();
  EXPECT_FALSE(called);
  EXPECT_EQ(Listing(dir.path()), std::set<std::string>{});
}

TEST(AtomicFileTest, NoTemporaryFilesAfterManyWrites) {
  TempDir dir;
  for (int i = 0; i < 20; ++i) {
    ASSERT_OK(WriteFileAtomically(dir.str("a"), "a" + std::to_string(i)));
    ASSERT_OK(WriteFileAtomically(dir.str("b"), [&](const std::string& temp) {
      WriteFile(temp, "b" + std::to_string(i));
      return Status::Ok();
    }));
  }
  EXPECT_EQ(ReadFile(dir.str("a")), "a19");
  EXPECT_EQ(ReadFile(dir.str("b")), "b19");
  EXPECT_EQ(Listing(dir.path()), (std::set<std::string>{"a", "b"}));
}

TEST(AtomicFileTest, CommitTempFileMovesTheFileIntoPlace) {
  TempDir dir;
  const std::string temp = dir.str("target.partial");
  const std::string path = dir.str("target");
  WriteFile(path, "old");
  WriteFile(temp, "streamed");
  ASSERT_EQ(::chmod(temp.c_str(), 0600), 0);
  ASSERT_OK(CommitTempFile(temp, path));
  EXPECT_EQ(ReadFile(path), "streamed");
  EXPECT_EQ(ModeOf(path), 0600u);  // the caller's mode is kept
  EXPECT_EQ(Listing(dir.path()), std::set<std::string>{"target"});
}

TEST(AtomicFileTest, CommitTempFileWithoutTheTemporaryFileLeavesTheTarget) {
  TempDir dir;
  const std::string temp = dir.str("never-written");
  const std::string path = dir.str("target");
  WriteFile(path, "old");
  const Status s = CommitTempFile(temp, path);
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_NE(s.ToString().find(temp), std::string::npos) << s.ToString();
  EXPECT_EQ(ReadFile(path), "old");
}

TEST(AtomicFileTest, SyncDirectory) {
  TempDir dir;
  EXPECT_OK(SyncDirectory(dir.path().string()));
  const std::string missing = dir.str("missing");
  const Status s = SyncDirectory(missing);
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_NE(s.ToString().find(missing), std::string::npos) << s.ToString();
}

}  // namespace
}  // namespace dtrain
