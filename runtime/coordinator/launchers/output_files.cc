#include "runtime/coordinator/launchers/output_files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>

namespace dtrain::coordinator {
namespace {

namespace fs = std::filesystem;

// "[1,3]<stdout>:" at the start of `line`: mpirun's job number, the rank and the stream.
struct Tag {
  std::string_view job;
  std::string_view rank;
  RankStream stream = RankStream::kStdout;
  size_t length = 0;
};

// The digits at `*at` (1 to `max_digits` of them), advancing `*at`; nullopt when there are none
// or too many.
std::optional<std::string_view> Digits(std::string_view line, size_t* at, size_t max_digits) {
  const size_t start = *at;
  while (*at < line.size() && line[*at] >= '0' && line[*at] <= '9') ++*at;
  const size_t n = *at - start;
  if (n == 0 || n > max_digits) return std::nullopt;
  return line.substr(start, n);
}

std::optional<Tag> ParseTag(std::string_view line) {
  Tag tag;
  size_t at = 0;
  auto expect = [&](std::string_view text) {
    if (line.substr(at, text.size()) != text) return false;
    at += text.size();
    return true;
  };
  if (!expect("[")) return std::nullopt;
  std::optional<std::string_view> job = Digits(line, &at, 9);
  if (!job || !expect(",")) return std::nullopt;
  std::optional<std::string_view> rank = Digits(line, &at, 6);
  if (!rank || !expect("]<")) return std::nullopt;
  if (expect("stderr")) {
    tag.stream = RankStream::kStderr;
  } else if (!expect("stdout")) {
    return std::nullopt;
  }
  if (!expect(">:")) return std::nullopt;
  tag.job = *job;
  tag.rank = *rank;
  tag.length = at;
  return tag;
}

bool AppendTo(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::app);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  return static_cast<bool>(out);
}

}  // namespace

StatusOr<LogChunk> ReadFileChunk(const std::string& path, int64_t offset, size_t max_bytes) {
  LogChunk chunk;
  chunk.next_offset = offset;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) return chunk;  // nothing written yet
    return Internal("cannot read log '" + path + "': " + std::strerror(err));
  }
  chunk.data.resize(max_bytes);
  size_t got = 0;
  int err = 0;
  while (got < max_bytes) {
    const ssize_t n = ::pread(fd, chunk.data.data() + got, max_bytes - got,
                              static_cast<off_t>(offset + static_cast<int64_t>(got)));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) err = errno;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  if (err != 0) return Internal("cannot read log '" + path + "': " + std::strerror(err));
  chunk.data.resize(got);
  chunk.next_offset = offset + static_cast<int64_t>(got);
  return chunk;
}

std::string ReadFileTail(const std::string& path, size_t bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  if (size < 0) return "";
  const std::streamoff start = size > static_cast<std::streamoff>(bytes) ? size - bytes : 0;
  in.seekg(start);
  std::string data(static_cast<size_t>(size - start), '\0');
  in.read(data.data(), static_cast<std::streamsize>(data.size()));
  data.resize(static_cast<size_t>(in.gcount()));
  return data;
}

std::string RankOutputPath(const std::string& ranks_dir, int rank, RankStream stream) {
  std::error_code ec;
  for (const fs::directory_entry& job : fs::directory_iterator(ranks_dir, ec)) {
    const fs::path file = job.path() / ("rank." + std::to_string(rank)) / RankStreamName(stream);
    if (fs::is_regular_file(file, ec)) return file.string();
  }
  return "";
}

StatusOr<TaggedOutputSplitter> TaggedOutputSplitter::Create(const std::string& combined_path,
                                                            const std::string& ranks_dir) {
  std::error_code ec;
  fs::remove_all(ranks_dir, ec);
  if (ec) return Internal("cannot empty '" + ranks_dir + "': " + ec.message());
  fs::create_directories(ranks_dir, ec);
  if (ec) return Internal("cannot create '" + ranks_dir + "': " + ec.message());
  std::ofstream combined(combined_path, std::ios::binary | std::ios::trunc);
  if (!combined) return Internal("cannot write '" + combined_path + "'");
  return TaggedOutputSplitter(combined_path, ranks_dir);
}

bool TaggedOutputSplitter::Write(std::string_view data) {
  const size_t last_newline = data.rfind('\n');
  if (last_newline == std::string_view::npos) {
    partial_.append(data);
    return true;
  }
  std::string lines = std::move(partial_);
  lines.append(data.substr(0, last_newline + 1));
  partial_.assign(data.substr(last_newline + 1));
  return WriteLines(lines);
}

bool TaggedOutputSplitter::Finish() {
  if (partial_.empty()) return true;
  std::string rest = std::move(partial_) + "\n";
  partial_.clear();
  return WriteLines(rest);
}

bool TaggedOutputSplitter::WriteLines(std::string_view text) {
  // One append per file for the whole chunk.
  std::string combined;
  std::map<std::string, std::string> by_rank;  // file -> its new lines
  size_t start = 0;
  while (start < text.size()) {
    const size_t end = text.find('\n', start);
    const std::string_view line = text.substr(start, end - start + 1);
    start = end + 1;
    const std::optional<Tag> tag = ParseTag(line);
    if (!tag) {
      combined.append(line);
      continue;
    }
    const std::string_view own = line.substr(tag->length);
    combined.append(own);
    const fs::path dir = fs::path(ranks_dir_) / std::string(tag->job) /
                         ("rank." + std::to_string(std::stoi(std::string(tag->rank))));
    by_rank[(dir / RankStreamName(tag->stream)).string()].append(own);
  }
  bool ok = AppendTo(combined_path_, combined);
  for (const auto& [path, lines] : by_rank) {
    std::error_code ec;
    fs::create_directories(fs::path(path).parent_path(), ec);
    ok = AppendTo(path, lines) && ok;
  }
  return ok;
}

}  // namespace dtrain::coordinator
