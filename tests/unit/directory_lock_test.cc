// DirectoryLock: one owner per state directory, named when another holds it.
#include "runtime/common/directory_lock.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <string>

#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"

namespace dtrain {
namespace {

using dtrain::testing::TempDir;

TEST(DirectoryLockTest, SecondHolderIsRefusedNamingTheFirstPid) {
  TempDir dir;
  auto first = DirectoryLock::Acquire(dir.str(""), "coordinator state dir");
  ASSERT_OK(first);
  auto second = DirectoryLock::Acquire(dir.str(""), "coordinator state dir");
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(second.status().message(), "coordinator state dir '" + dir.str("") +
                                           "' is in use (pid " + std::to_string(::getpid()) +
                                           " holds " + dir.str("LOCK") + ")");
}

TEST(DirectoryLockTest, ReleasedOnDestructionAndOnMove) {
  TempDir dir;
  {
    auto first = DirectoryLock::Acquire(dir.str(""), "x");
    ASSERT_OK(first);
    DirectoryLock moved = std::move(first).value();
    EXPECT_FALSE(DirectoryLock::Acquire(dir.str(""), "x").ok());
  }
  EXPECT_OK(DirectoryLock::Acquire(dir.str(""), "x"));
}

TEST(DirectoryLockTest, ADeadHoldersLockIsFree) {
  TempDir dir;
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto lock = DirectoryLock::Acquire(dir.str(""), "x");
    ::_exit(lock.ok() ? 0 : 1);  // exits holding it: the kernel must drop it
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_OK(DirectoryLock::Acquire(dir.str(""), "x"));
}

TEST(DirectoryLockTest, LockFileIsOwnerOnlyAndMissingDirIsAnError) {
  TempDir dir;
  const mode_t old_umask = ::umask(0);
  auto lock = DirectoryLock::Acquire(dir.str(""), "x");
  ::umask(old_umask);
  ASSERT_OK(lock);
  struct stat st;
  ASSERT_EQ(::stat(dir.str("LOCK").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto missing = DirectoryLock::Acquire(dir.str("no/such"), "x");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find(dir.str("no/such/LOCK")), std::string::npos)
      << missing.status().ToString();
}

// Before: LOCK was opened following links, so a LOCK planted as a symlink made the holder
// truncate the file it named and write its pid there.
TEST(DirectoryLockTest, ASymlinkedLockFileIsRefusedAndItsTargetUntouched) {
  TempDir dir;
  { std::ofstream(dir.str("victim")) << "precious\n"; }
  ASSERT_EQ(::symlink(dir.str("victim").c_str(), dir.str("LOCK").c_str()), 0);
  auto lock = DirectoryLock::Acquire(dir.str(""), "output_dir");
  ASSERT_FALSE(lock.ok());
  EXPECT_EQ(lock.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(lock.status().message().find(dir.str("LOCK") + " is a symbolic link"),
            std::string::npos)
      << lock.status().ToString();
  std::ifstream victim(dir.str("victim"));
  std::string contents((std::istreambuf_iterator<char>(victim)), {});
  EXPECT_EQ(contents, "precious\n");
}

}  // namespace
}  // namespace dtrain
