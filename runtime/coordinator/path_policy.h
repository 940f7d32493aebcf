// Confines the file-system paths a submitted spec names (data.path, output_dir, checkpoint.dir)
// to configured roots, so a job cannot read or write outside them ("../../etc" escapes,
// symlinks pointing out, absolute paths elsewhere).
#ifndef DTRAIN_RUNTIME_COORDINATOR_PATH_POLICY_H_
#define DTRAIN_RUNTIME_COORDINATOR_PATH_POLICY_H_

#include <string>
#include <vector>

#include "runtime/common/status.h"
#include "runtime/spec/job_spec.h"

namespace dtrain::coordinator {

class PathPolicy {
 public:
  // `roots` are made absolute and canonical once; relative spec paths are resolved against
  // `working_dir` (the directory jobs run in).
  PathPolicy(std::vector<std::string> roots, std::string working_dir);

  // OK, or INVALID_ARGUMENT "data.path: '/etc/passwd' is outside the allowed roots (/srv/data,
  // /srv/runs)". Resolution is lexical ('..' folded) plus symlinks of the part that exists.
  Status Check(const std::string& field, const std::string& path) const;
  // The same check, returning the path as it resolves now (absolute, '..' folded, the symlinks
  // of its existing part followed): what a launch hands the worker, so that it writes where the
  // check was made even if a link in the path is swapped afterwards.
  StatusOr<std::string> Confine(const std::string& field, const std::string& path) const;
  // Checks data.path, output_dir and checkpoint.dir; reports every violation, one per line.
  Status CheckSpec(const JobSpec& spec) const;

  const std::vector<std::string>& roots() const { return roots_; }
  const std::string& working_dir() const { return working_dir_; }

 private:
  std::vector<std::string> roots_;
  std::string working_dir_;
};

}  // namespace dtrain::coordinator

#endif  // DTRAIN_RUNTIME_COORDINATOR_PATH_POLICY_H_
