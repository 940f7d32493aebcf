#include "runtime/coordinator/path_policy.h"

#include <algorithm>
#include <filesystem>
#include <system_error>
#include <utility>
#include <vector>

#include "runtime/spec/task_spec.h"

namespace dtrain::coordinator {
namespace {

namespace fs = std::filesystem;

// Symlinks followed while resolving one path before giving up (Linux's MAXSYMLINKS).
constexpr int kMaxSymlinks = 40;

// Resolves `path` (absolute) the way the kernel would when a job opens or creates it: every
// existing component that is a symlink is replaced by its target, and '..' steps to the parent
// of what has been resolved so far (so "link/.." is the parent of the link's target, not the
// directory holding the link). Components that do not exist are kept as written. A dangling
// symlink is still followed, since creating a file through it writes at its target.
StatusOr<fs::path> Resolve(const fs::path& path) {
  fs::path resolved = path.root_path();
  std::vector<fs::path> pending;  // components still to visit, last one first
  for (const fs::path& part : path.relative_path()) pending.push_back(part);
  std::reverse(pending.begin(), pending.end());
  int symlinks = 0;
  while (!pending.empty()) {
    const fs::path part = std::move(pending.back());
    pending.pop_back();
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      resolved = resolved.parent_path();  // the parent of "/" is "/"
      continue;
    }
    const fs::path next = resolved / part;
    std::error_code ec;
    const fs::file_status status = fs::symlink_status(next, ec);
    if (ec && status.type() != fs::file_type::not_found) {
      return InvalidArgument("cannot resolve '" + next.string() + "': " + ec.message());
    }
    if (status.type() != fs::file_type::symlink) {
      resolved = next;
      continue;
    }
    if (++symlinks > kMaxSymlinks) {
      return InvalidArgument("cannot resolve '" + path.string() + "': too many symbolic links");
    }
    const fs::path target = fs::read_symlink(next, ec);
    if (ec) return InvalidArgument("cannot resolve '" + next.string() + "': " + ec.message());
    if (target.is_absolute()) resolved = target.root_path();
    const fs::path target_rest = target.relative_path();
    const std::vector<fs::path> target_parts(target_rest.begin(), target_rest.end());
    pending.insert(pending.end(), target_parts.rbegin(), target_parts.rend());
  }
  return resolved;
}

// Component-wise prefix test: /srv/data contains /srv/data and /srv/data/x, not /srv/data2.
bool IsWithin(const fs::path& path, const fs::path& root) {
  auto p = path.begin();
  for (auto r = root.begin(); r != root.end(); ++r) {
    if (r->empty()) continue;  // trailing separator
    if (p == path.end() || *p != *r) return false;
    ++p;
  }
  return true;
}

std::string RootList(const std::vector<std::string>& roots) {
  if (roots.empty()) return "no allowed roots configured";
  std::string list;
  for (const std::string& root : roots) {
    if (!list.empty()) list += ", ";
    list += root;
  }
  return list;
}

fs::path CurrentDirectory() {
  std::error_code ec;
  fs::path cwd = fs::current_path(ec);
  return ec ? fs::path("/") : cwd;
}

}  // namespace

PathPolicy::PathPolicy(std::vector<std::string> roots, std::string working_dir) {
  const fs::path cwd = CurrentDirectory();
  working_dir_ = working_dir.empty() ? cwd.string() : (cwd / working_dir).string();
  for (const std::string& root : roots) {
    const fs::path absolute = (cwd / root).lexically_normal();
    StatusOr<fs::path> resolved = Resolve(absolute);
    // A root that cannot be resolved stays lexical: it can then only match paths that resolve
    // to the same spelling, which never widens what is allowed.
    roots_.push_back(resolved.ok() ? resolved->string() : absolute.string());
  }
}

Status PathPolicy::Check(const std::string& field, const std::string& path) const {
  return Confine(field, path).status();
}

StatusOr<std::string> PathPolicy::Confine(const std::string& field, const std::string& path) const {
  const fs::path absolute = fs::path(working_dir_) / path;  // `path` wins when absolute
  StatusOr<fs::path> resolved = Resolve(absolute);
  if (!resolved.ok()) return InvalidArgument(field + ": " + resolved.status().message());
  for (const std::string& root : roots_) {
    if (IsWithin(*resolved, root)) return resolved->string();
  }
  return InvalidArgument(field + ": '" + path + "' is outside the allowed roots (" +
                         RootList(roots_) + ")");
}

Status PathPolicy::CheckSpec(const JobSpec& spec) const {
  std::vector<std::pair<std::string, std::string>> fields = {
      {"data.path", spec.data.path},
      {"output_dir", spec.output_dir},
      {"checkpoint.dir", spec.checkpoint.dir},
  };
  // Paths only the task knows about (e.g. a style image) are held to the same roots.
  if (spec.task_spec != nullptr) {
    for (auto& field : spec.task_spec->Paths()) fields.push_back(std::move(field));
  }
  std::string problems;
  for (const auto& [field, path] : fields) {
    Status status = Check(field, path);
    if (status.ok()) continue;
    if (!problems.empty()) problems += "\n";
    problems += status.message();
  }
  if (problems.empty()) return Status::Ok();
  return InvalidArgument(problems);
}

}  // namespace dtrain::coordinator
