#include "runtime/coordinator/launcher.h"

#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <vector>

namespace dtrain::coordinator {
namespace {

constexpr size_t kLastLines = 20;
constexpr size_t kMaxMessageInReason = 400;

// A worker's "failed" progress event.
struct FailedEvent {
  int rank = -1;
  int exit_code = 0;
  int blamed_rank = -1;
  bool has_blame = false;  // workers before issue 10 did not write blamed_rank
  std::string message;
};

bool ParseFailedEvent(const std::string& line, FailedEvent* out) {
  const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || j.value("event", "") != "failed") return false;
  auto integer = [&](const char* key, int* value) {
    if (!j.contains(key) || !j[key].is_number_integer()) return false;
    *value = j[key].get<int>();
    return true;
  };
  if (!integer("rank", &out->rank)) return false;
  integer("exit_code", &out->exit_code);
  out->has_blame = integer("blamed_rank", &out->blamed_rank);
  if (j.contains("message") && j["message"].is_string()) out->message = j["message"];
  return true;
}

// What mpirun itself said about the first rank it saw fail.
struct MpirunReport {
  int rank = -1;
  int exit_code = 0;
  int signal = 0;
  std::string host;              // the host of `rank`
  std::string lost_daemon_host;  // a host whose daemon mpirun lost (its link cut, or it died)
};

MpirunReport ParseMpirunText(const std::string& text) {
  // OpenMPI 4.1 (see tests/unit/launcher_test.cc for the texts, captured from real runs). At most
  // 9 digits per number: std::stoi never throws on a line a rank printed itself.
  static const std::regex kSignal(
      R"re(process rank (\d{1,9}) with PID \d+ on\s+node (\S+) exited on signal (\d{1,3}))re");
  static const std::regex kImproper(
      R"re(process rank (\d{1,9}) with PID \d+ on\s+node (\S+) exiting improperly)re");
  static const std::regex kProcess(
      R"re(Process name:\s*\[\[\d+,\d+\],(\d{1,9})\]\s*Exit code:\s*(-?\d{1,9}))re");
  static const std::regex kAbort(
      R"re(MPI_ABORT was invoked on rank (\d{1,9}) in communicator \S+\s+with errorcode (-?\d{1,9}))re");
  // A host cut off from mpirun: its daemon is named, not a rank.
  static const std::regex kDaemonLost(R"re(Remote daemon:\s*\[\[\d+,\d+\],\d+\] on node (\S+))re");
  MpirunReport r;
  std::smatch m;
  if (std::regex_search(text, m, kSignal)) {
    r.rank = std::stoi(m[1]);
    r.host = m[2];
    r.signal = std::stoi(m[3]);
  } else if (std::regex_search(text, m, kImproper)) {
    r.rank = std::stoi(m[1]);
    r.host = m[2];
  } else if (std::regex_search(text, m, kProcess)) {
    r.rank = std::stoi(m[1]);
    r.exit_code = std::stoi(m[2]);
  } else if (std::regex_search(text, m, kAbort)) {
    r.rank = std::stoi(m[1]);
    r.exit_code = std::stoi(m[2]);
  }
  if (r.host.empty() && std::regex_search(text, m, kDaemonLost)) r.lost_daemon_host = m[1];
  return r;
}

// "rank 2 (vm pid 1234)" in a liveness message: where the blamed rank ran.
std::string HostNamedFor(const std::string& message, int rank) {
  static const std::regex kRankHost(R"re(rank (\d{1,9}) \((\S+) pid \d+\))re");
  for (auto it = std::sregex_iterator(message.begin(), message.end(), kRankHost);
       it != std::sregex_iterator(); ++it) {
    if (std::stoi((*it)[1]) == rank) return (*it)[2];
  }
  return "";
}

// At most kMaxMessageInReason characters of a worker's message.
std::string Clipped(const std::string& message) {
  if (message.size() <= kMaxMessageInReason) return message;
  return message.substr(0, kMaxMessageInReason) + "...";
}

// A rank's own failure message without its status code name ("ABORTED: loss became NaN ..."
// -> "loss became NaN ..."): after "exited with code 3" the name adds nothing.
std::string WithoutCodeName(const std::string& message) {
  static const std::regex kCodePrefix(R"re(^[A-Z_]{2,30}: )re");
  return std::regex_replace(message, kCodePrefix, "", std::regex_constants::format_first_only);
}

// mpirun's own error-log lines ("[vm:123] [[20794,0],0] ORTE_ERROR_LOG: Data unpack would read
// past end of buffer in file util/show_help.c at line 501"): noise that hides the rank's lines.
bool IsMpirunNoise(const std::string& line) {
  return line.find("ORTE_ERROR_LOG") != std::string::npos ||
         line.find("PMIX_ERROR_LOG") != std::string::npos;
}

}  // namespace

const char* RankStreamName(RankStream stream) {
  return stream == RankStream::kStderr ? "stderr" : "stdout";
}

StatusOr<LogChunk> Launcher::ReadRankLog(const LaunchedJob&, int, RankStream, int64_t, size_t) {
  return Status(StatusCode::kUnimplemented,
                std::string("the ") + name() + " launcher keeps no per-rank logs");
}

std::string ExitReport::Describe() const {
  const std::string processes = DescribeProcesses();
  if (cluster_reason.empty()) return processes;
  return processes + "; " + cluster_reason.substr(0, cluster_reason.find('\n'));
}

std::string ExitReport::DescribeProcesses() const {
  std::string s;
  if (failing_rank >= 0) {
    const std::string on = failing_host.empty() ? "" : " on host " + failing_host;
    if (rank_signal != 0) {
      s = "rank " + std::to_string(failing_rank) + on + " was killed by signal " +
          std::to_string(rank_signal);
    } else if (reported_by >= 0 && reported_by != failing_rank) {
      s = "rank " + std::to_string(failing_rank) + on + " failed, reported by rank " +
          std::to_string(reported_by) + ": " + Clipped(failure_message);
    } else {
      s = "rank " + std::to_string(failing_rank) + " exited with code " +
          std::to_string(rank_exit_code);
      // The rank's own words ("loss became NaN at step 12 ..."): the code alone says too little.
      if (!failure_message.empty()) s += ": " + Clipped(WithoutCodeName(failure_message));
    }
    if (signal != 0) s += "; mpirun killed by signal " + std::to_string(signal);
    return s;
  }
  if (signal != 0) return "mpirun killed by signal " + std::to_string(signal);
  return "mpirun exited with code " + std::to_string(exit_code);
}

void ExplainFailure(const std::string& output_tail, ExitReport* report) {
  std::istringstream in(output_tail);
  std::string line;
  std::vector<std::string> plain;
  std::string text;  // everything but progress lines: mpirun's report may span lines
  FailedEvent first, blaming;
  bool have_first = false, have_blaming = false;
  while (std::getline(in, line)) {
    if (!line.empty() && line.front() == '{') {
      FailedEvent e;
      if (ParseFailedEvent(line, &e)) {
        if (!have_first) {
          first = e;
          have_first = true;
        }
        if (!have_blaming && e.has_blame && e.blamed_rank >= 0) {
          blaming = e;
          have_blaming = true;
        }
      }
      continue;
    }
    text += line + "\n";
    if (!IsMpirunNoise(line)) plain.push_back(line);
  }
  const MpirunReport mpirun = ParseMpirunText(text);
  if (have_blaming) {
    report->failing_rank = blaming.blamed_rank;
    report->reported_by = blaming.rank;
    report->failure_message = blaming.message;
    report->rank_exit_code = blaming.blamed_rank == blaming.rank ? blaming.exit_code : 0;
    report->failing_host = HostNamedFor(blaming.message, blaming.blamed_rank);
  } else if (mpirun.rank >= 0) {
    report->failing_rank = mpirun.rank;
    report->rank_exit_code = mpirun.exit_code;
  } else if (have_first && !first.has_blame) {  // a worker from before blamed_rank
    report->failing_rank = first.rank;
    report->rank_exit_code = first.exit_code;
  }
  if (mpirun.rank >= 0 && mpirun.rank == report->failing_rank) {
    report->rank_signal = mpirun.signal;
    if (!mpirun.host.empty()) report->failing_host = mpirun.host;
  }
  if (report->failing_host.empty()) report->failing_host = mpirun.lost_daemon_host;
  const size_t begin = plain.size() > kLastLines ? plain.size() - kLastLines : 0;
  report->last_lines.clear();
  for (size_t i = begin; i < plain.size(); ++i) report->last_lines += plain[i] + "\n";
}

}  // namespace dtrain::coordinator
