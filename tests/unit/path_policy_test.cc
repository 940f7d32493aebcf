// Confining spec paths to allowed roots: plain inside/outside, '..' escapes, sibling prefixes,
// symlinks (pointing out, dangling, followed by '..', loops), relative paths, and CheckSpec.
#include "runtime/coordinator/path_policy.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "runtime/spec/task_spec.h"
#include "tests/support/temp_dir.h"

namespace dtrain::coordinator {
namespace {

namespace fs = std::filesystem;

class PathPolicyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::canonical(temp_.path());  // the temp directory itself may sit behind a symlink
    for (const char* sub : {"data", "data/sub", "data2", "runs", "outside", "outside/dir"}) {
      fs::create_directories(dir_ / sub);
    }
    std::ofstream(dir_ / "data" / "file") << "x";
    std::ofstream(dir_ / "outside" / "secret") << "x";
  }

  std::string P(const std::string& relative) const { return (dir_ / relative).string(); }

  PathPolicy Policy() const { return PathPolicy({P("data"), P("runs")}, P("runs")); }

  std::string Outside(const std::string& field, const std::string& path) const {
    return field + ": '" + path + "' is outside the allowed roots (" + P("data") + ", " +
           P("runs") + ")";
  }

  dtrain::testing::TempDir temp_;
  fs::path dir_;
};

TEST_F(PathPolicyTest, PathsUnderARootAreAllowed) {
  PathPolicy policy = Policy();
  for (const std::string& path : {P("data"), P("data/"), P("data/file"), P("data/sub"),
                                  P("data/./sub/../file"), P("runs/job-1/checkpoints")}) {
    Status status = policy.Check("data.path", path);
    EXPECT_TRUE(status.ok()) << path << ": " << status.ToString();
  }
}

TEST_F(PathPolicyTest, NonExistentPathsUnderARootAreAllowed) {
  EXPECT_TRUE(Policy().Check("output_dir", P("runs/new/deeper/still")).ok());
  EXPECT_TRUE(Policy().Check("output_dir", P("data/not-yet")).ok());
}

TEST_F(PathPolicyTest, PathsOutsideAreRejectedWithTheExactMessage) {
  PathPolicy policy = Policy();
  Status status = policy.Check("data.path", "/etc/passwd");
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), Outside("data.path", "/etc/passwd"));
  EXPECT_EQ(policy.Check("data.path", P("outside/secret")).message(),
            Outside("data.path", P("outside/secret")));
  EXPECT_FALSE(policy.Check("data.path", "/").ok());
  EXPECT_FALSE(policy.Check("data.path", dir_.string()).ok());  // the parent of the roots
}

TEST_F(PathPolicyTest, DotDotCannotEscape) {
  PathPolicy policy = Policy();
  const std::string escape = P("data/../outside/secret");
  EXPECT_EQ(policy.Check("data.path", escape).message(), Outside("data.path", escape));
  EXPECT_FALSE(policy.Check("data.path", P("data/sub/../../outside")).ok());
  EXPECT_FALSE(policy.Check("data.path", P("data/new/../../outside")).ok());  // through a new dir
  EXPECT_FALSE(policy.Check("data.path", P("data/../../../../../../etc")).ok());
}

TEST_F(PathPolicyTest, SiblingWithTheRootAsStringPrefixIsOutside) {
  const std::string sibling = P("data2/x");
  EXPECT_EQ(Policy().Check("data.path", sibling).message(), Outside("data.path", sibling));
  EXPECT_FALSE(Policy().Check("data.path", P("data2")).ok());
  EXPECT_FALSE(Policy().Check("data.path", P("runsx")).ok());
}

TEST_F(PathPolicyTest, SymlinkInsideARootPointingOutsideIsRejected) {
  fs::create_directory_symlink(dir_ / "outside", dir_ / "data" / "link");
  PathPolicy policy = Policy();
  EXPECT_FALSE(policy.Check("data.path", P("data/link")).ok());
  EXPECT_FALSE(policy.Check("data.path", P("data/link/secret")).ok());
  EXPECT_FALSE(policy.Check("data.path", P("data/link/new/file")).ok());
  // Relative link targets too.
  fs::create_directory_symlink("../../outside", dir_ / "data" / "sub" / "rel");
  EXPECT_FALSE(policy.Check("data.path", P("data/sub/rel/secret")).ok());
}

TEST_F(PathPolicyTest, SymlinksThatStayInsideAreAllowed) {
  fs::create_directory_symlink(dir_ / "data" / "sub", dir_ / "data" / "alias");
  fs::create_directory_symlink(dir_ / "runs", dir_ / "outside" / "into-runs");
  PathPolicy policy = Policy();
  EXPECT_TRUE(policy.Check("data.path", P("data/alias/x")).ok());
  EXPECT_TRUE(policy.Check("data.path", P("outside/into-runs/x")).ok());  // resolves into runs
}

TEST_F(PathPolicyTest, DanglingSymlinkPointingOutsideIsRejected) {
  // Writing through it would create outside/new-file.
  fs::create_symlink(dir_ / "outside" / "new-file", dir_ / "runs" / "dangling");
  EXPECT_FALSE(Policy().Check("output_dir", P("runs/dangling")).ok());
}

TEST_F(PathPolicyTest, DotDotAfterASymlinkFollowsTheKernelNotTheSpelling) {
  // Lexically data/link/../secret is data/secret, but the kernel resolves link first:
  // outside/dir/.. is outside, so the path opens outside/secret.
  fs::create_directory_symlink(dir_ / "outside" / "dir", dir_ / "data" / "link");
  EXPECT_FALSE(Policy().Check("data.path", P("data/link/../secret")).ok());
}

TEST_F(PathPolicyTest, SymlinkLoopIsAnError) {
  fs::create_symlink(dir_ / "data" / "b", dir_ / "data" / "a");
  fs::create_symlink(dir_ / "data" / "a", dir_ / "data" / "b");
  Status status = Policy().Check("data.path", P("data/a/x"));
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("too many symbolic links"), std::string::npos)
      << status.message();
}

TEST_F(PathPolicyTest, RelativePathsResolveAgainstTheWorkingDirectory) {
  PathPolicy policy({P("data"), P("runs")}, P("data"));
  EXPECT_TRUE(policy.Check("data.path", "file").ok());
  EXPECT_TRUE(policy.Check("data.path", "sub/new").ok());
  EXPECT_TRUE(policy.Check("output_dir", "../runs/job").ok());
  Status status = policy.Check("data.path", "../outside/secret");
  EXPECT_EQ(status.message(), Outside("data.path", "../outside/secret"));  // as given
  EXPECT_FALSE(policy.Check("data.path", "../data2").ok());
}

TEST_F(PathPolicyTest, RootsAreCanonicalised) {
  fs::create_directory_symlink(dir_ / "data", dir_ / "data-link");
  PathPolicy policy({P("data-link/"), P("runs/sub/..")}, P("runs"));
  EXPECT_EQ(policy.roots(), (std::vector<std::string>{P("data"), P("runs")}));
  EXPECT_TRUE(policy.Check("data.path", P("data/file")).ok());
  EXPECT_TRUE(policy.Check("data.path", P("data-link/file")).ok());
}

TEST_F(PathPolicyTest, NoRootsAllowsNothing) {
  PathPolicy policy({}, P("runs"));
  EXPECT_EQ(policy.Check("data.path", P("runs/x")).message(),
            "data.path: '" + P("runs/x") +
                "' is outside the allowed roots (no allowed roots "
                "configured)");
  EXPECT_TRUE(PathPolicy({"/"}, "/").Check("data.path", "/anything/at/all").ok());
}

TEST_F(PathPolicyTest, CheckSpecReportsEveryField) {
  JobSpec spec;
  spec.data.path = P("data");
  spec.output_dir = "job";  // relative to the working directory, runs/
  spec.checkpoint.dir = "job/checkpoints";
  EXPECT_TRUE(Policy().CheckSpec(spec).ok());

  spec.data.path = "/etc";
  spec.output_dir = "../outside";
  spec.checkpoint.dir = P("data2");
  Status status = Policy().CheckSpec(spec);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), Outside("data.path", "/etc") + "\n" +
                                  Outside("output_dir", "../outside") + "\n" +
                                  Outside("checkpoint.dir", P("data2")));

  spec.data.path = P("data");
  spec.checkpoint.dir = P("runs/c");
  EXPECT_EQ(Policy().CheckSpec(spec).message(), Outside("output_dir", "../outside"));
}

// A task's own paths (TaskSpec::Paths) are held to the same roots as data.path.
class TwoImagesSpec final : public TaskSpec {
 public:
  std::string style_image;
  std::unique_ptr<TaskSpec> Clone() const override {
    return std::make_unique<TwoImagesSpec>(*this);
  }
  std::vector<std::pair<std::string, std::string>> Paths() const override {
    return {{"data.style_image", style_image}};
  }
};

TEST_F(PathPolicyTest, CheckSpecIncludesTheTasksOwnPaths) {
  JobSpec spec;
  spec.data.path = P("data");
  spec.output_dir = "job";
  spec.checkpoint.dir = "job/checkpoints";
  auto task = std::make_unique<TwoImagesSpec>();
  task->style_image = P("data/style.png");
  spec.task_spec = std::move(task);
  EXPECT_TRUE(Policy().CheckSpec(spec).ok());
  spec.TaskSpecAs<TwoImagesSpec>()->style_image = "/etc/passwd";
  EXPECT_EQ(Policy().CheckSpec(spec).message(), Outside("data.style_image", "/etc/passwd"));
}

// What a launch hands the worker: the path as it resolves now, so the worker writes where the
// check was made.
TEST_F(PathPolicyTest, ConfineReturnsTheResolvedPath) {
  fs::create_symlink(dir_ / "data" / "sub", dir_ / "runs" / "to-sub");
  StatusOr<std::string> resolved = Policy().Confine("output_dir", "to-sub/../sub/new");
  ASSERT_TRUE(resolved.ok()) << resolved.status().ToString();
  EXPECT_EQ(*resolved, P("data/sub/new"));
  EXPECT_EQ(*Policy().Confine("output_dir", "job/./x"), P("runs/job/x"));
  StatusOr<std::string> outside = Policy().Confine("output_dir", "/etc");
  ASSERT_FALSE(outside.ok());
  EXPECT_EQ(outside.status().message(), Outside("output_dir", "/etc"));
}

}  // namespace
}  // namespace dtrain::coordinator
