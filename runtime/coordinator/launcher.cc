#include "runtime/coordinator/launcher.h"

#include <regex>
#include <sstream>
#include <vector>

namespace dtrain::coordinator {
namespace {

constexpr size_t kLastLines = 20;

}  // namespace

std::string ExitReport::Describe() const {
  std::string s;
  if (failing_rank >= 0) {
    s = "rank " + std::to_string(failing_rank) + " exited with code " +
        std::to_string(rank_exit_code);
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
  static const std::regex kWorkerFailed(
      R"re("event":"failed".*"exit_code":(-?\d+).*"rank":(\d+))re");
  static const std::regex kMpiProcess(R"re(Process name:\s*\[\[\d+,\d+\],(\d+)\])re");
  static const std::regex kMpiExit(R"re(Exit code:\s*(-?\d+))re");
  int mpi_rank = -1, mpi_exit = 0;
  bool from_worker = false;
  std::smatch m;
  while (std::getline(in, line)) {
    if (!line.empty() && line.front() == '{') {
      if (!from_worker && std::regex_search(line, m, kWorkerFailed)) {
        report->rank_exit_code = std::stoi(m[1]);
        report->failing_rank = std::stoi(m[2]);
        from_worker = true;
      }
      continue;
    }
    plain.push_back(line);
    if (mpi_rank < 0 && std::regex_search(line, m, kMpiProcess)) mpi_rank = std::stoi(m[1]);
    if (mpi_rank >= 0 && mpi_exit == 0 && std::regex_search(line, m, kMpiExit)) {
      mpi_exit = std::stoi(m[1]);
    }
  }
  if (!from_worker && mpi_rank >= 0) {
    report->failing_rank = mpi_rank;
    report->rank_exit_code = mpi_exit;
  }
  const size_t first = plain.size() > kLastLines ? plain.size() - kLastLines : 0;
  report->last_lines.clear();
  for (size_t i = first; i < plain.size(); ++i) report->last_lines += plain[i] + "\n";
}

}  // namespace dtrain::coordinator
