// A Launcher that runs nothing: each "job" is an output buffer and an exit report that the test
// writes. Its jobs live in a ScriptedLauncher::World that outlives any one launcher, the way real
// processes outlive a coordinator, so restarts can be tested by building a new launcher over the
// same world. Thread-safe (the supervisor's loop and a Cancel may call it at once).
#ifndef DTRAIN_TESTS_UNIT_SCRIPTED_LAUNCHER_H_
#define DTRAIN_TESTS_UNIT_SCRIPTED_LAUNCHER_H_

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>

#include "runtime/coordinator/launcher.h"

namespace dtrain::testing {

class ScriptedLauncher final : public coordinator::Launcher {
 public:
  static constexpr char kName[] = "scripted";

  struct Process {
    coordinator::LaunchRequest request;
    bool attempt_dir_existed = false;  // when Launch was called
    std::string output;                // what ReadLog serves
    // What ReadRankLog serves: "<rank> stdout" or "<rank> stderr" -> that rank's own output.
    std::map<std::string, std::string> rank_output;
    std::optional<coordinator::ExitReport> exit;  // set by the test (or Stop) when the job "ends"
    bool stopped = false;
  };

  // Everything the test scripts and inspects. Lock `mu` around direct access to `processes`
  // while a supervisor loop runs; the helpers below lock it themselves.
  struct World {
    std::mutex mu;
    std::map<std::string, Process> processes;  // by handle
    int next = 1000;
    bool fail_launches = false;
    bool keeps_rank_output = true;  // false: ReadRankLog is the interface's UNIMPLEMENTED
    // Prepare and Unprepare calls, in order: "prepare 7 attempt 1 ranks 2 <spec_path>",
    // "unprepare 7 attempt 1".
    std::vector<std::string> preparations;
    std::string first_output =
        "starting\n"
        R"({"event":"epoch","epoch":1,"metrics":{"accuracy":0.9},"train_loss":0.3})"
        "\n";

    // The most recent launch of job `id`.
    Process& Of(int64_t id) {
      std::lock_guard<std::mutex> lock(mu);
      Process* latest = nullptr;
      int latest_n = -1;
      for (auto& [handle, p] : processes) {
        const int n = std::stoi(handle);
        if (p.request.job_id == id && n > latest_n) {
          latest = &p;
          latest_n = n;
        }
      }
      if (latest == nullptr) throw std::runtime_error("job never launched");
      return *latest;
    }
    int Launches(int64_t id) {
      std::lock_guard<std::mutex> lock(mu);
      int n = 0;
      for (const auto& [handle, p] : processes) n += p.request.job_id == id;
      return n;
    }
    void Append(int64_t id, const std::string& text) {
      Process& p = Of(id);
      std::lock_guard<std::mutex> lock(mu);
      p.output += text;
    }
    void End(int64_t id, const coordinator::ExitReport& report) {
      Process& p = Of(id);
      std::lock_guard<std::mutex> lock(mu);
      p.exit = report;
    }
  };

  explicit ScriptedLauncher(std::shared_ptr<World> world) : world_(std::move(world)) {}

  const char* name() const override { return kName; }

  Status Prepare(const coordinator::QueuedLaunch& q) override {
    std::lock_guard<std::mutex> lock(world_->mu);
    world_->preparations.push_back("prepare " + std::to_string(q.job_id) + " attempt " +
                                   std::to_string(q.attempt) + " ranks " + std::to_string(q.ranks) +
                                   " " + q.spec_path);
    return Status::Ok();
  }
  Status Unprepare(int64_t job_id, int attempt) override {
    std::lock_guard<std::mutex> lock(world_->mu);
    world_->preparations.push_back("unprepare " + std::to_string(job_id) + " attempt " +
                                   std::to_string(attempt));
    return Status::Ok();
  }

  StatusOr<coordinator::LaunchedJob> Launch(const coordinator::LaunchRequest& request) override {
    std::lock_guard<std::mutex> lock(world_->mu);
    if (world_->fail_launches) return FailedPrecondition("cannot start 'mpirun': scripted");
    const std::string handle = std::to_string(world_->next++);
    Process& p = world_->processes[handle];
    p.request = request;
    p.attempt_dir_existed = std::filesystem::is_directory(request.attempt_dir);
    p.output = world_->first_output;
    return coordinator::LaunchedJob{kName, handle};
  }

  StatusOr<std::optional<coordinator::ExitReport>> Poll(
      const coordinator::LaunchedJob& job) override {
    std::lock_guard<std::mutex> lock(world_->mu);
    DTRAIN_ASSIGN_OR_RETURN(Process * p, Find(job));
    return p->exit;
  }

  StatusOr<coordinator::LogChunk> ReadLog(const coordinator::LaunchedJob& job, int64_t offset,
                                          size_t max_bytes) override {
    std::lock_guard<std::mutex> lock(world_->mu);
    DTRAIN_ASSIGN_OR_RETURN(Process * p, Find(job));
    coordinator::LogChunk chunk;
    const size_t from = std::min(static_cast<size_t>(offset), p->output.size());
    chunk.data = p->output.substr(from, max_bytes);
    chunk.next_offset = static_cast<int64_t>(from + chunk.data.size());
    return chunk;
  }

  StatusOr<coordinator::LogChunk> ReadRankLog(const coordinator::LaunchedJob& job, int rank,
                                              coordinator::RankStream stream, int64_t offset,
                                              size_t max_bytes) override {
    std::unique_lock<std::mutex> lock(world_->mu);
    if (!world_->keeps_rank_output) {
      lock.unlock();
      return Launcher::ReadRankLog(job, rank, stream, offset, max_bytes);
    }
    DTRAIN_ASSIGN_OR_RETURN(Process * p, Find(job));
    const std::string& text =
        p->rank_output[std::to_string(rank) + " " + coordinator::RankStreamName(stream)];
    coordinator::LogChunk chunk;
    const size_t from = std::min(static_cast<size_t>(offset), text.size());
    chunk.data = text.substr(from, max_bytes);
    chunk.next_offset = static_cast<int64_t>(from + chunk.data.size());
    return chunk;
  }

  Status Stop(const coordinator::LaunchedJob& job, std::chrono::milliseconds) override {
    std::lock_guard<std::mutex> lock(world_->mu);
    DTRAIN_ASSIGN_OR_RETURN(Process * p, Find(job));
    p->stopped = true;
    if (!p->exit) {
      coordinator::ExitReport killed;
      killed.signal = 15;
      p->exit = killed;
    }
    return Status::Ok();
  }

 private:
  StatusOr<Process*> Find(const coordinator::LaunchedJob& job) {
    auto it = world_->processes.find(job.handle);
    if (job.backend != kName || it == world_->processes.end()) {
      return NotFound("no scripted job '" + job.backend + "'/'" + job.handle + "'");
    }
    return &it->second;
  }

  std::shared_ptr<World> world_;
};

}  // namespace dtrain::testing

#endif  // DTRAIN_TESTS_UNIT_SCRIPTED_LAUNCHER_H_
