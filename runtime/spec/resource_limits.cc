#include "runtime/spec/resource_limits.h"

#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "runtime/spec/spec_reader.h"

namespace dtrain {
namespace {

namespace fs = std::filesystem;

constexpr const char* kCgroupMemoryMax = "/sys/fs/cgroup/memory.max";

std::optional<double> CgroupMemoryLimit() {
  std::ifstream in(kCgroupMemoryMax);
  if (!in) return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  return ParseCgroupMemoryMax(text.str());
}

double PhysicalMemory() {
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page_size = ::sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page_size <= 0) return 0;
  return static_cast<double>(pages) * static_cast<double>(page_size);
}

// Free bytes for an unprivileged writer on the file system `path` would be created in: the
// nearest ancestor that exists. Negative when it cannot be told.
double FreeBytesFor(const std::string& path) {
  std::error_code ec;
  fs::path p = fs::absolute(path, ec);
  if (ec) return -1;
  while (!p.empty() && !fs::exists(p, ec)) {
    if (p == p.parent_path()) break;
    p = p.parent_path();
  }
  struct statvfs st;
  if (::statvfs(p.c_str(), &st) != 0) return -1;
  return static_cast<double>(st.f_bavail) * static_cast<double>(st.f_frsize);
}

std::string MemoryFigure(const ResourceEstimate& e) {
  std::string s = "about " + FormatBytes(e.MemoryBytesPerRank()) + " per rank (" +
                  FormatCount(e.parameters) + " parameters x " +
                  FormatCount(e.bytes_per_parameter) + " bytes + " +
                  FormatBytes(e.activation_bytes_per_sample) + " of activations per sample x " +
                  FormatCount(e.batch_per_rank) + " samples per rank";
  if (e.data_bytes > 0) s += " + " + FormatBytes(e.data_bytes) + " of data in memory";
  return s + ")";
}

// Reports at `field` where the document gives it, else at its nearest given parent ("model" for a
// defaulted model.conv_channels), else at the start of the document.
void ReportAt(SpecReader& reader, const std::string& field, const std::string& what) {
  std::string at = field;
  while (!at.empty() && !reader.Given(at)) {
    const size_t dot = at.find_last_of(".[");
    at = dot == std::string::npos ? std::string() : at.substr(0, dot);
  }
  reader.Error(reader.MarkOf(at), field, what);
}

}  // namespace

ResourceLimits StaticResourceLimits() { return ResourceLimits(); }

std::optional<double> ParseCgroupMemoryMax(const std::string& text) {
  std::string s = text;
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  if (s.empty() || s == "max") return std::nullopt;
  if (!std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  errno = 0;
  const double v = std::strtod(s.c_str(), nullptr);
  if (errno != 0 || v <= 0) return std::nullopt;
  return v;
}

ResourceLimits HostResourceLimits(int local_ranks, const std::string& generated_path) {
  ResourceLimits limits = StaticResourceLimits();
  const int ranks = std::max(1, local_ranks);
  const std::optional<double> cgroup = CgroupMemoryLimit();
  const double physical = PhysicalMemory();
  double memory = 0;
  std::string source;
  if (cgroup && (physical <= 0 || *cgroup < physical)) {
    memory = *cgroup;
    source = "this host's cgroup memory.max of " + FormatBytes(memory);
  } else if (physical > 0) {
    memory = physical;
    source = "this host's " + FormatBytes(memory) + " of memory";
  }
  if (memory > 0 && memory / ranks < limits.max_memory_bytes_per_rank) {
    limits.max_memory_bytes_per_rank = memory / ranks;
    limits.memory_source = source + " shared by " + std::to_string(ranks) + " local rank(s)";
  }
  std::error_code ec;
  if (!generated_path.empty() && !fs::exists(generated_path, ec)) {
    const double free = FreeBytesFor(generated_path);
    if (free >= 0 && free < limits.max_generated_bytes) {
      limits.max_generated_bytes = free;
      limits.generated_source = "the free disk space where '" + generated_path + "' is written";
    }
  }
  return limits;
}

void ReportExceededLimits(const ResourceEstimate& e, const ResourceLimits& limits,
                          SpecReader& reader) {
  // `!(a <= b)`: a NaN estimate (inf x 0) is refused too.
  if (!(e.parameters <= limits.max_parameters)) {
    ReportAt(reader, e.parameters_field,
             "the model would have about " + FormatCount(e.parameters) + " parameters (" +
                 e.parameters_detail + "), more than the limit of " +
                 FormatCount(limits.max_parameters) + "; make the model smaller");
  } else if (!(e.MemoryBytesPerRank() <= limits.max_memory_bytes_per_rank)) {
    // Only when the parameters fit: a model over its cap is over every memory cap as well.
    ReportAt(reader, e.memory_field,
             "training would need " + MemoryFigure(e) + ", more than the limit of " +
                 FormatBytes(limits.max_memory_bytes_per_rank) + " (" + limits.memory_source + ")");
  }
  if (!(e.generated_bytes <= limits.max_generated_bytes)) {
    ReportAt(reader, e.generated_field,
             "the generator would write up to " + FormatBytes(e.generated_bytes) +
                 ", more than the limit of " + FormatBytes(limits.max_generated_bytes) + " (" +
                 limits.generated_source + ")");
  }
}

}  // namespace dtrain
