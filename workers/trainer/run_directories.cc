#include "workers/trainer/run_directories.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include "workers/trainer/tensorboard_writer.h"

namespace dtrain::trainer {
namespace {

namespace fs = std::filesystem;

// Files a run writes into output_dir, besides its checkpoints.
constexpr const char* kRunFiles[] = {"summary.json", "model.pt", "metrics.jsonl"};
// Checkpoints, their temporaries and corrupt ones all start so (see checkpoint.h).
constexpr char kCheckpointPrefix[] = "ckpt-";

Status MakeRealDirectory(const std::string& field, const std::string& dir) {
  struct stat st;
  if (::lstat(dir.c_str(), &st) == 0) {
    if (S_ISLNK(st.st_mode)) {
      return FailedPrecondition(field + " '" + dir +
                                "' is a symbolic link; dtrain writes only into a real directory "
                                "(give the link's target instead)");
    }
    if (!S_ISDIR(st.st_mode)) {
      return FailedPrecondition(field + " '" + dir + "' exists and is not a directory");
    }
    return Status::Ok();
  }
  if (errno != ENOENT) {
    return Internal("cannot inspect " + field + " '" + dir + "': " + std::strerror(errno));
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Internal("cannot create " + field + " '" + dir + "': " + ec.message());
  return Status::Ok();
}

Status RemoveIfPresent(const fs::path& path) {
  std::error_code ec;
  fs::remove(path, ec);
  if (ec)
    return Internal("cannot remove '" + path.string() +
                    "' left by an earlier run: " + ec.message());
  return Status::Ok();
}

}  // namespace

StatusOr<RunDirectories> RunDirectories::Claim(const std::string& output_dir,
                                               const std::string& checkpoint_dir, bool resume) {
  RunDirectories claimed;
  const std::pair<std::string, std::string> dirs[] = {{"output_dir", output_dir},
                                                      {"checkpoint.dir", checkpoint_dir}};
  std::vector<fs::path> locked;
  for (const auto& [field, dir] : dirs) {
    DTRAIN_RETURN_IF_ERROR(MakeRealDirectory(field, dir));
    std::error_code ec;
    const fs::path canonical = fs::canonical(dir, ec);
    if (ec) return Internal("cannot resolve " + field + " '" + dir + "': " + ec.message());
    // checkpoint.dir may be output_dir itself: a second lock on it would refuse this very run.
    if (std::find(locked.begin(), locked.end(), canonical) != locked.end()) continue;
    StatusOr<DirectoryLock> lock = DirectoryLock::Acquire(dir, field);
    if (!lock.ok()) {
      if (lock.status().code() != StatusCode::kFailedPrecondition) return lock.status();
      return FailedPrecondition(lock.status().message() +
                                "; another run is writing there, and two runs must not share a "
                                "directory: give this job its own " +
                                field);
    }
    claimed.locks_.push_back(std::move(lock).value());
    locked.push_back(canonical);
  }
  if (resume) return claimed;
  for (const char* name : kRunFiles) {
    DTRAIN_RETURN_IF_ERROR(RemoveIfPresent(fs::path(output_dir) / name));
  }
  std::error_code ec;
  // An earlier run's curves would mix with this run's in TensorBoard.
  const fs::path events_dir = fs::path(output_dir) / kTensorBoardSubdir;
  for (const auto& entry : fs::directory_iterator(events_dir, ec)) {
    if (entry.path().filename().string().rfind(kEventFilePrefix, 0) == 0) {
      DTRAIN_RETURN_IF_ERROR(RemoveIfPresent(entry.path()));
    }
  }
  ec.clear();  // no events directory: nothing to remove
  for (const auto& entry : fs::directory_iterator(checkpoint_dir, ec)) {
    if (entry.path().filename().string().rfind(kCheckpointPrefix, 0) == 0) {
      DTRAIN_RETURN_IF_ERROR(RemoveIfPresent(entry.path()));
    }
  }
  if (ec) return Internal("cannot list checkpoint.dir '" + checkpoint_dir + "': " + ec.message());
  return claimed;
}

}  // namespace dtrain::trainer
