// A launched job's output as the backends keep it in the attempt's directory: the combined
// output in one file (output.log), and each rank's own stdout and stderr in the layout of
// OpenMPI's --output-filename, <ranks_dir>/<mpirun job>/rank.<N>/{stdout,stderr}. The local
// backend has mpirun write both; the Kubernetes backend gets one tagged stream from the launcher
// pod and splits it (TaggedOutputSplitter).
#ifndef DTRAIN_RUNTIME_COORDINATOR_LAUNCHERS_OUTPUT_FILES_H_
#define DTRAIN_RUNTIME_COORDINATOR_LAUNCHERS_OUTPUT_FILES_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "runtime/common/status.h"
#include "runtime/coordinator/launcher.h"

namespace dtrain::coordinator {

// Up to `max_bytes` of the file at `path` from `offset`, as Launcher::ReadLog serves it: a file
// that does not exist yet is an empty chunk.
StatusOr<LogChunk> ReadFileChunk(const std::string& path, int64_t offset, size_t max_bytes);
// The last `bytes` of the file ("" when it cannot be read).
std::string ReadFileTail(const std::string& path, size_t bytes);

// The file holding `rank`'s `stream` under `ranks_dir`; "" while the rank has written nothing.
std::string RankOutputPath(const std::string& ranks_dir, int rank, RankStream stream);

// Splits mpirun's --tag-output stream ("[1,3]<stdout>:text") into the combined file, with the
// tags taken off, and each rank's own files. Lines without a tag (mpirun's own messages) go to
// the combined file only. A line is written once its newline arrives; Finish writes the rest.
class TaggedOutputSplitter {
 public:
  // Starts both afresh: truncates `combined_path` and empties `ranks_dir`, because a stream is
  // always read from its start (a restarted coordinator reads the launcher's log again).
  static StatusOr<TaggedOutputSplitter> Create(const std::string& combined_path,
                                               const std::string& ranks_dir);
  // false when a file cannot be written.
  bool Write(std::string_view data);
  bool Finish();

 private:
  TaggedOutputSplitter(std::string combined_path, std::string ranks_dir)
      : combined_path_(std::move(combined_path)), ranks_dir_(std::move(ranks_dir)) {}
  // Appends `text`, whole lines each ending in a newline, to their files.
  bool WriteLines(std::string_view text);

  std::string combined_path_;
  std::string ranks_dir_;
  std::string partial_;  // the start of a line whose newline has not arrived
};

}  // namespace dtrain::coordinator

#endif  // DTRAIN_RUNTIME_COORDINATOR_LAUNCHERS_OUTPUT_FILES_H_
