// Replacing a file so that a crash leaves either the old contents or the new ones, never a torn
// mix: write a temporary file beside the target, fsync it, rename it over the target, fsync the
// directory (without that last step the rename itself may not survive a power cut).
// Every writer of a file that someone reads back (checkpoints, specs, exit files, manifests,
// snapshots, port files) goes through here, so they all keep the same promise.
#ifndef DTRAIN_RUNTIME_COMMON_ATOMIC_FILE_H_
#define DTRAIN_RUNTIME_COMMON_ATOMIC_FILE_H_

#include <sys/types.h>

#include <functional>
#include <string>
#include <string_view>

#include "runtime/common/status.h"

namespace dtrain {

// For state only its owner may read (coordinator state, biometric data).
inline constexpr mode_t kOwnerOnlyFileMode = 0600;

// Writes `contents` to `path` atomically with permission bits `mode` (applied exactly, whatever
// the umask). On failure the target is untouched and the temporary file is removed. Errors name
// the path and the failing step; ENOSPC/EDQUOT come back as RESOURCE_EXHAUSTED.
Status WriteFileAtomically(const std::string& path, std::string_view contents, mode_t mode = 0644);

// The same for writers that produce the file themselves (torch::save, a streaming encoder):
// `write` is handed the temporary path (created empty with `mode`) and must fill it and close
// whatever it opened; then it is fsynced, renamed over `path`, and the directory fsynced.
Status WriteFileAtomically(const std::string& path,
                           const std::function<Status(const std::string& temp_path)>& write,
                           mode_t mode = 0644);

// The second half on its own, for a temporary file the caller wrote and closed: fsync
// `temp_path`, rename it to `path` (same directory), fsync the directory.
Status CommitTempFile(const std::string& temp_path, const std::string& path);

// fsync of a directory: makes creates, renames and unlinks inside it durable.
Status SyncDirectory(const std::string& dir);

}  // namespace dtrain

#endif  // DTRAIN_RUNTIME_COMMON_ATOMIC_FILE_H_
