#include "runtime/coordinator/supervisor.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <sstream>
#include <utility>

#include "runtime/common/atomic_file.h"
#include "runtime/spec/job_spec.h"
#include "runtime/spec/overrides.h"
#include "runtime/spec/task_spec.h"

namespace dtrain::coordinator {
namespace {

namespace fs = std::filesystem;

// Where a restarted coordinator continues reading an attempt's output.
constexpr char kTailOffsetFile[] = "tail.offset";
// The launch of an attempt, written as soon as the launcher returns it and before RUNNING is
// committed: a coordinator killed in between leaves the job PENDING with its ranks running, and
// its successor adopts that launch instead of starting a second one into the same attempt dir.
constexpr char kLaunchRecordFile[] = "launch.json";
// How long Cancel waits past the grace period for the loop's own record of an ending it
// claimed first.
constexpr std::chrono::seconds kCancelSettleTime{5};

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void Report(int64_t id, const std::string& what) {
  std::fprintf(stderr, "[coordinator] job %lld: %s\n", static_cast<long long>(id), what.c_str());
}

// "localhost:2,b:1" -> placement (the format Placement::ToString writes).
Placement ParsePlacement(int64_t id, const std::string& text) {
  Placement p;
  p.job_id = id;
  std::stringstream in(text);
  std::string part;
  while (std::getline(in, part, ',')) {
    const size_t colon = part.rfind(':');
    if (colon == std::string::npos) continue;
    p.slots.emplace_back(part.substr(0, colon), std::stoi(part.substr(colon + 1)));
  }
  return p;
}

// A YAML double-quoted scalar: a path stays one string whatever characters it holds.
std::string QuotedYaml(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// "job-<id>-<UTC submit time>": one directory per job, the same for all of its attempts.
std::string JobRunDirName(const JobRecord& job) {
  const std::time_t seconds = static_cast<std::time_t>(job.submitted_ms / 1000);
  std::tm utc{};
  ::gmtime_r(&seconds, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &utc);
  return "job-" + std::to_string(job.id) + "-" + stamp;
}

// The ranks a placement puts on `host`: mpirun's by-slot mapping fills the hostfile's hosts in
// order, and the hostfile lists the placement's. "rank 2", "ranks 2-3", or "" for no such host.
std::string RanksOn(const Placement& placement, const std::string& host) {
  int first = 0;
  for (const auto& [name, count] : placement.slots) {
    if (name == host) {
      return count == 1
                 ? "rank " + std::to_string(first)
                 : "ranks " + std::to_string(first) + "-" + std::to_string(first + count - 1);
    }
    first += count;
  }
  return "";
}

// The host a failed attempt is blamed on: the one mpirun named, else the one the failing rank
// ran on. "" when neither is known or the name is none of the placement's hosts.
std::string BlamedHost(const ExitReport& report, const Placement& placement) {
  if (!report.failing_host.empty()) {
    return RanksOn(placement, report.failing_host).empty() ? "" : report.failing_host;
  }
  int first = 0;
  for (const auto& [name, count] : placement.slots) {
    if (report.failing_rank >= first && report.failing_rank < first + count) return name;
    first += count;
  }
  return "";
}

}  // namespace

JobSupervisor::JobSupervisor(SupervisorOptions options, JobStore* store,
                             std::unique_ptr<Scheduler> scheduler,
                             std::unique_ptr<Launcher> launcher)
    : options_(std::move(options)),
      store_(store),
      launcher_(std::move(launcher)),
      scheduler_(std::move(scheduler)) {}

JobSupervisor::~JobSupervisor() { Stop(); }

std::string JobSupervisor::JobDir(int64_t id) const {
  return (fs::path(options_.state_dir) / "jobs" / std::to_string(id)).string();
}

std::string JobSupervisor::AttemptDir(int64_t id, int attempt) const {
  return (fs::path(JobDir(id)) / ("attempt-" + std::to_string(attempt))).string();
}

Status JobSupervisor::Start() {
  DTRAIN_RETURN_IF_ERROR(Recover());
  loop_ = std::thread([this] { Loop(); });
  return Status::Ok();
}

Status JobSupervisor::Recover() {
  DTRAIN_ASSIGN_OR_RETURN(std::vector<JobRecord> active, store_->Active());
  std::vector<int64_t> restop;
  for (const JobRecord& job : active) {
    if (job.state == JobState::kRunning && !job.launcher_backend.empty() &&
        job.launcher_backend != launcher_->name()) {
      return FailedPrecondition(
          "job " + std::to_string(job.id) + " is RUNNING on launcher '" + job.launcher_backend +
          "', but this coordinator is configured with '" + launcher_->name() +
          "'; start it with --launcher " + job.launcher_backend + " to follow the job");
    }
  }
  for (const JobRecord& job : active) {
    if (job.state == JobState::kPending && AdoptUnrecordedLaunch(job)) continue;
    if (job.state == JobState::kPending) {
      std::lock_guard<std::mutex> lock(mu_);
      QueueLocked({job.id, job.ranks, job.priority, job.submitted_ms});
      if (job.held || !job.after.empty()) {
        gates_[job.id] = Gate{job.held, job.after, ""};
        ApplyGateLocked(job.id);
      }
      continue;
    }
    if (job.state != JobState::kRunning) continue;
    Running run;
    run.attempt = job.attempt;
    run.launched = {job.launcher_backend, job.launcher_handle};
    run.attempt_dir = AttemptDir(job.id, job.attempt);
    {
      std::ifstream offset(fs::path(run.attempt_dir) / kTailOffsetFile);
      if (offset >> run.log_offset) {
        run.saved_offset = run.log_offset;
      } else {
        run.log_offset = 0;
      }
    }
    const StatusOr<std::optional<ExitReport>> polled =
        job.launcher_backend.empty()
            ? StatusOr<std::optional<ExitReport>>(NotFound("no launcher handle was recorded"))
            : launcher_->Poll(run.launched);
    if (polled.ok() && (!polled->has_value() || !(*polled)->lost)) {
      // Alive, or ended while we were away with its exit recorded: follow it as before.
      std::lock_guard<std::mutex> lock(mu_);
      Status reserved = scheduler_->Reserve(ParsePlacement(job.id, job.placement));
      if (!reserved.ok()) Report(job.id, reserved.ToString());
      running_[job.id] = std::move(run);
      // A stop (a cancel, or early stopping) that this coordinator requested but may not have
      // carried out before it stopped: made again, or the job would run on and then be
      // recorded CANCELLED.
      if (job.cancel_requested) restop.push_back(job.id);
      continue;
    }
    ExitReport lost = polled.ok() ? **polled : ExitReport();
    lost.exit_code = lost.exit_code == 0 ? -1 : lost.exit_code;
    lost.lost = true;
    if (!polled.ok()) lost.last_lines += "(" + polled.status().message() + ")\n";
    lost.last_lines += "(found gone after a coordinator restart)\n";
    {
      std::lock_guard<std::mutex> lock(mu_);
      (void)scheduler_->Reserve(ParsePlacement(job.id, job.placement));
    }
    RecordEndings({PlanEnding(job.id, run.attempt, lost)});
  }
  for (int64_t id : restop) {
    Report(id, "stopping it again: its stop was requested before the coordinator restarted");
    StopAsync(id);
  }
  return Status::Ok();
}

bool JobSupervisor::AdoptUnrecordedLaunch(const JobRecord& job) {
  const int attempt = job.attempt + 1;
  const std::string attempt_dir = AttemptDir(job.id, attempt);
  std::ifstream in(fs::path(attempt_dir) / kLaunchRecordFile);
  if (!in) return false;
  const nlohmann::json record = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  auto text = [&](const char* key) {
    return record.is_object() && record.contains(key) && record[key].is_string();
  };
  if (!text("backend") || !text("handle") || !text("placement") ||
      record["backend"].get<std::string>() != launcher_->name()) {
    Report(job.id, "ignoring unreadable or foreign " + attempt_dir + "/" + kLaunchRecordFile);
    return false;
  }
  Running run;
  run.attempt = attempt;
  run.attempt_dir = attempt_dir;
  run.launched = {record["backend"].get<std::string>(), record["handle"].get<std::string>()};
  const std::string placement = record["placement"].get<std::string>();
  TransitionRequest t;
  t.id = job.id;
  t.expected_from = JobState::kPending;
  t.to = JobState::kRunning;
  t.at_ms = NowMs();
  t.reason = "adopted attempt " + std::to_string(attempt) + " on " + placement +
             ", started by a coordinator that stopped before recording it";
  t.update.attempt = attempt;
  t.update.started_ms = t.at_ms;
  t.update.launcher_backend = run.launched.backend;
  t.update.launcher_handle = run.launched.handle;
  t.update.placement = placement;
  const std::vector<Status> recorded = store_->Transitions({t});
  if (!recorded[0].ok()) {
    Report(job.id,
           "cannot adopt attempt " + std::to_string(attempt) + ": " + recorded[0].ToString());
    return false;
  }
  // Followed like any running job: a launch that ended meanwhile is recorded by the next pass.
  std::lock_guard<std::mutex> lock(mu_);
  Status reserved = scheduler_->Reserve(ParsePlacement(job.id, placement));
  if (!reserved.ok()) Report(job.id, reserved.ToString());
  running_[job.id] = std::move(run);
  return true;
}

void JobSupervisor::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (loop_.joinable()) loop_.join();
  for (std::future<void>& stopper : stoppers_) stopper.wait();
  stoppers_.clear();
}

void JobSupervisor::Wake() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    woken_ = true;
  }
  wake_.notify_all();
}

void JobSupervisor::Loop() {
  auto next_pass = std::chrono::steady_clock::now();
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait_for(lock, options_.poll_interval, [&] { return woken_ || stopping_; });
      // Woken again soon after a pass: wait out the rest of its gap, so that passes take at
      // most a third of a core however fast jobs are submitted (a pass over 100,000 queued
      // jobs takes milliseconds; one per submit would starve the handlers of CPU). On a short
      // queue the gap is microseconds, so a job still starts at once.
      wake_.wait_until(lock, next_pass, [&] { return stopping_; });
      if (stopping_) return;
      woken_ = false;
    }
    const auto start = std::chrono::steady_clock::now();
    Tick();
    const auto took = std::chrono::steady_clock::now() - start;
    next_pass =
        start + 3 * std::min<std::chrono::steady_clock::duration>(took, options_.poll_interval);
  }
}

void JobSupervisor::Tick() {
  FollowRunning();
  ScheduleReady();
  PrepareQueued();
  CompactFinished();
}

void JobSupervisor::CompactFinished() {
  if (options_.retain_finished.count() <= 0) return;
  const auto now = std::chrono::steady_clock::now();
  if (now < next_compaction_) return;
  // A batch per pass keeps each write transaction short; a full one means more are due.
  constexpr int kBatch = 500;
  const int64_t now_ms = NowMs();
  StatusOr<std::vector<int64_t>> compacted =
      store_->CompactFinished(now_ms - options_.retain_finished.count(), kBatch, now_ms);
  if (!compacted.ok()) {
    std::fprintf(stderr, "dtrain coordinator: retention: %s\n",
                 compacted.status().ToString().c_str());
    next_compaction_ = now + options_.retention_interval;
    return;
  }
  for (int64_t id : *compacted) {
    // The attempts' files (the launcher's output, each rank's own); the spec stays.
    std::error_code ec;
    for (const fs::directory_entry& entry : fs::directory_iterator(JobDir(id), ec)) {
      if (entry.path().filename().string().rfind("attempt-", 0) == 0) {
        fs::remove_all(entry.path(), ec);
      }
    }
  }
  next_compaction_ =
      static_cast<int>(compacted->size()) == kBatch ? now : now + options_.retention_interval;
}

void JobSupervisor::QueueLocked(const QueuedJob& job) {
  UnqueueLocked(job.id);  // queued again (a retry): counted once
  pending_index_[job.id] = pending_.size();
  pending_.push_back(job);
  ++queue_version_;
  ++pending_ranks_[job.ranks];
  to_prepare_.push_back(job.id);
}

QueuedJob* JobSupervisor::QueuedLocked(int64_t id) {
  const auto index = pending_index_.find(id);
  return index == pending_index_.end() ? nullptr : &pending_[index->second];
}

const QueuedJob* JobSupervisor::QueuedLocked(int64_t id) const {
  const auto index = pending_index_.find(id);
  return index == pending_index_.end() ? nullptr : &pending_[index->second];
}

void JobSupervisor::UnqueueLocked(int64_t id) {
  const auto index = pending_index_.find(id);
  if (index == pending_index_.end()) return;
  const size_t i = index->second;
  const auto count = pending_ranks_.find(pending_[i].ranks);
  if (count != pending_ranks_.end() && --count->second == 0) pending_ranks_.erase(count);
  // The order of pending_ means nothing (a pass sorts): the last job takes the hole.
  if (i + 1 != pending_.size()) {
    pending_[i] = std::move(pending_.back());
    pending_index_[pending_[i].id] = i;
  }
  pending_.pop_back();
  pending_index_.erase(index);
  ++queue_version_;
}

void JobSupervisor::PrepareQueued() {
  constexpr size_t kMaxPreparesPerPass = 16;
  std::vector<int64_t> ids;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Only the jobs queued since the last pass: a walk over the whole queue here made every pass,
    // and so every submit, cost O(queue): 80 % of the coordinator's CPU while 84,000 were queued.
    while (!to_prepare_.empty() && ids.size() < kMaxPreparesPerPass) {
      const int64_t id = to_prepare_.front();
      to_prepare_.pop_front();
      if (pending_index_.count(id) != 0 && prepared_.count(id) == 0 &&
          std::find(ids.begin(), ids.end(), id) == ids.end()) {
        ids.push_back(id);
      }
    }
  }
  for (int64_t id : ids) {
    StatusOr<JobRecord> job = store_->Get(id);
    if (!job.ok() || job->state != JobState::kPending) continue;
    const QueuedLaunch queued{id, job->attempt + 1, job->ranks, job->spec_yaml,
                              (fs::path(JobDir(id)) / "spec.yaml").string()};
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (pending_index_.count(id) == 0) continue;  // launched or cancelled meanwhile
      prepared_[id] = queued.attempt;
    }
    // Not fatal: Launch starts the attempt whether or not it was prepared.
    Status s = launcher_->Prepare(queued);
    if (!s.ok()) {
      std::fprintf(stderr, "dtrain coordinator: preparing job %lld attempt %d: %s\n",
                   static_cast<long long>(id), queued.attempt, s.ToString().c_str());
    }
  }
}

// ---------------------------------------------------------------------------- following jobs

void JobSupervisor::RecordProgress(int64_t id, const std::string& line) {
  nlohmann::json event = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!event.is_object()) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto& m = metrics_[id];
  const std::string kind = event.value("event", "");
  if (kind == "step") {
    for (const char* k : {"loss", "samples_per_s", "eta_s", "lr"}) {
      if (event.contains(k) && event[k].is_number()) m[k] = event[k].get<double>();
    }
    if (event.contains("step") && event["step"].is_number())
      m["step"] = event["step"].get<double>();
    if (event.contains("epoch") && event["epoch"].is_number())
      m["epoch"] = event["epoch"].get<double>();
  } else if (kind == "epoch" && event.contains("metrics") && event["metrics"].is_object()) {
    for (auto& [k, v] : event["metrics"].items()) {
      if (v.is_number()) m["eval." + k] = v.get<double>();
    }
    if (event.contains("train_loss") && event["train_loss"].is_number()) {
      m["train_loss"] = event["train_loss"].get<double>();
    }
    // The epoch just finished (from 1) and the run's total: what early stopping judges.
    if (event.contains("epoch") && event["epoch"].is_number_integer() && event.contains("epochs") &&
        event["epochs"].is_number_integer()) {
      epoch_results_.push_back({id, event["epoch"].get<int>(), event["epochs"].get<int>(), m});
    }
  } else if (kind == "finished" && event.contains("summary") && event["summary"].is_object()) {
    const auto& summary = event["summary"];
    if (summary.contains("test") && summary["test"].is_object()) {
      for (auto& [k, v] : summary["test"].items()) {
        if (v.is_number()) m["test." + k] = v.get<double>();
      }
    }
  }
}

bool JobSupervisor::ReadOutput(int64_t id, Running& run, std::vector<NewEvent>* events) {
  int taken = 0;
  while (taken < options_.max_events_per_tick) {
    StatusOr<LogChunk> chunk =
        launcher_->ReadLog(run.launched, run.log_offset, options_.log_read_bytes);
    if (!chunk.ok()) {
      // Output that cannot be read must not keep a job from finishing.
      Report(id, "cannot read output: " + chunk.status().ToString());
      return true;
    }
    std::string data = std::move(run.partial_line) + chunk->data;
    run.partial_line.clear();
    size_t start = 0;
    for (size_t nl; (nl = data.find('\n', start)) != std::string::npos; start = nl + 1) {
      std::string line = data.substr(start, nl - start);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      const bool progress =
          line.rfind("{\"", 0) == 0 && line.find("\"event\"") != std::string::npos;
      if (progress) RecordProgress(id, line);
      events->push_back({id, progress ? "progress" : "log", std::move(line), NowMs()});
      ++taken;
    }
    run.partial_line = data.substr(start);
    run.log_offset = chunk->next_offset;
    if (chunk->data.size() < options_.log_read_bytes) return true;
  }
  return false;
}

void JobSupervisor::FollowRunning() {
  std::vector<int64_t> ids;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, run] : running_) ids.push_back(id);
  }
  // One pass: every job's new lines, then every ended job's final state, each committed as one
  // batch, so a pass costs two fsyncs however many jobs it follows (and shares them with
  // concurrent submits). A job's read position advances only once its lines are stored, and it
  // ends only once all of its output is: a terminal state implies its lines are stored.
  struct Followed {
    int64_t id;
    Running run;         // the copy this pass advanced
    size_t first_event;  // its lines are events[first_event, end_event)
    size_t end_event;
    bool finished;  // ended, and all of its output read
  };
  std::vector<Followed> followed;
  std::vector<NewEvent> events;
  for (int64_t id : ids) {
    Followed f{id, Running(), events.size(), 0, false};
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = running_.find(id);
      if (it == running_.end()) continue;  // cancelled meanwhile
      f.run = it->second;
    }
    bool caught_up = ReadOutput(id, f.run, &events);
    if (!f.run.exit) {
      StatusOr<std::optional<ExitReport>> polled = launcher_->Poll(f.run.launched);
      if (!polled.ok()) Report(id, "cannot poll: " + polled.status().ToString());
      if (polled.ok() && polled->has_value()) {
        f.run.exit = **polled;
        // The last lines written before the exit.
        caught_up = ReadOutput(id, f.run, &events);
      }
    }
    f.finished = f.run.exit.has_value() && caught_up;
    if (f.finished && !f.run.partial_line.empty()) {
      // No newline is coming after the last line of an ended job.
      events.push_back({id, "log", std::move(f.run.partial_line), NowMs()});
      f.run.partial_line.clear();
    }
    f.end_event = events.size();
    followed.push_back(std::move(f));
  }
  const std::vector<StatusOr<int64_t>> stored = store_->AppendEvents(events);
  struct Ended {
    int64_t id;
    int attempt;
    ExitReport report;
  };
  std::vector<Ended> ended;
  std::vector<const Followed*> to_save;  // read positions to persist
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const Followed& f : followed) {
      auto it = running_.find(f.id);
      if (it == running_.end()) continue;
      it->second.exit = f.run.exit;
      bool all_stored = true;
      for (size_t i = f.first_event; i < f.end_event; ++i)
        all_stored = all_stored && stored[i].ok();
      if (!all_stored) continue;  // read again from the old position next pass
      it->second.log_offset = f.run.log_offset;
      it->second.partial_line = f.run.partial_line;
      if (f.finished) {
        // Claimed here: a concurrent Cancel no longer finds it and leaves the ending to us.
        ended.push_back({f.id, f.run.attempt, *f.run.exit});
        running_.erase(it);
      } else {
        to_save.push_back(&f);
      }
    }
  }
  const auto now = std::chrono::steady_clock::now();
  for (const Followed* f : to_save) {
    // Where to continue after a coordinator restart: the start of the unfinished line, so a few
    // lines may repeat but none are lost.
    const int64_t resume = f->run.log_offset - static_cast<int64_t>(f->run.partial_line.size());
    if (resume == f->run.saved_offset || now - f->run.saved_at < options_.offset_save_interval) {
      continue;
    }
    Status saved = WriteFileAtomically((fs::path(f->run.attempt_dir) / kTailOffsetFile).string(),
                                       std::to_string(resume), kOwnerOnlyFileMode);
    if (!saved.ok()) {
      Report(f->id, saved.ToString());
      continue;
    }
    std::lock_guard<std::mutex> lock(mu_);
    auto it = running_.find(f->id);
    if (it != running_.end()) {
      it->second.saved_offset = resume;
      it->second.saved_at = now;
    }
  }
  std::vector<Ending> endings;
  endings.reserve(ended.size());
  for (const Ended& e : ended) endings.push_back(PlanEnding(e.id, e.attempt, e.report));
  RecordEndings(endings);
  ApplyEarlyStopping();
}

void JobSupervisor::ApplyEarlyStopping() {
  std::vector<EpochResult> results;
  {
    std::lock_guard<std::mutex> lock(mu_);
    results.swap(epoch_results_);
  }
  for (const EpochResult& r : results) {
    StatusOr<JobRecord> job = store_->Get(r.id);
    if (!job.ok() || job->array_id == 0 || job->state != JobState::kRunning ||
        job->cancel_requested) {
      continue;
    }
    auto rule = early_stopping_.find(job->array_id);
    if (rule == early_stopping_.end()) {
      StatusOr<std::optional<EarlyStoppingRule>> stored = store_->EarlyStoppingOf(job->array_id);
      if (!stored.ok()) {
        Report(r.id, "early stopping: " + stored.status().ToString());
        continue;
      }
      rule = early_stopping_.emplace(job->array_id, *stored).first;
    }
    if (!rule->second || !IsRung(*rule->second, r.epoch)) continue;
    const EarlyStoppingRule& asha = *rule->second;
    const auto value = r.metrics.find(asha.metric);
    if (value == r.metrics.end()) {
      Report(r.id, "early stopping: the trial reported no " + asha.metric + " at epoch " +
                       std::to_string(r.epoch) + "; it goes on");
      continue;
    }
    std::vector<double> at_rung;
    if (std::isfinite(value->second)) {
      StatusOr<std::vector<double>> recorded =
          store_->RecordRungResult(job->array_id, r.epoch, r.id, value->second);
      if (!recorded.ok()) {
        Report(r.id, "early stopping: " + recorded.status().ToString());
        continue;
      }
      at_rung = *std::move(recorded);
    }
    // A trial at its last epoch is finishing anyway: its result still counts for the others.
    if (r.epoch >= r.epochs) continue;
    const std::optional<std::string> reason = StopReason(asha, r.epoch, value->second, at_rung);
    if (reason) StopEarly(r.id, *reason);
  }
  // Stops that have finished; the loop records their endings like any other.
  stoppers_.erase(std::remove_if(stoppers_.begin(), stoppers_.end(),
                                 [](std::future<void>& f) {
                                   return f.wait_for(std::chrono::seconds(0)) ==
                                          std::future_status::ready;
                                 }),
                  stoppers_.end());
}

void JobSupervisor::StopEarly(int64_t id, const std::string& reason) {
  std::optional<LaunchedJob> launched;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = running_.find(id);
    if (it != running_.end()) launched = it->second.launched;
  }
  if (!launched) return;
  Status marked = store_->SetCancelRequested(id, reason);
  if (!marked.ok()) {
    Report(id, "early stopping: " + marked.ToString());
    return;
  }
  Report(id, reason);
  StopAsync(id);
}

void JobSupervisor::StopAsync(int64_t id) {
  std::optional<LaunchedJob> launched;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = running_.find(id);
    if (it != running_.end()) launched = it->second.launched;
  }
  if (!launched) return;
  // Stopping waits up to cancel_grace for the ranks to exit: not on the loop's thread.
  Launcher* launcher = launcher_.get();
  const auto grace = options_.cancel_grace;
  stoppers_.push_back(std::async(std::launch::async, [this, launcher, grace, id, launched] {
    Status stopped = launcher->Stop(*launched, grace);
    if (!stopped.ok()) Report(id, "early stopping: " + stopped.ToString());
    Wake();
  }));
}

JobSupervisor::Ending JobSupervisor::PlanEnding(int64_t id, int attempt,
                                                const ExitReport& report) const {
  Ending ending;
  TransitionRequest& t = ending.transition;
  t.id = id;
  t.expected_from = JobState::kRunning;
  t.at_ms = NowMs();
  t.update.finished_ms = t.at_ms;
  t.update.exit_code = report.exit_code;
  t.update.signal = report.signal;
  t.update.failing_rank = report.failing_rank;
  t.update.rank_signal = report.rank_signal;
  t.update.last_log_lines = report.last_lines;
  auto record = store_->Get(id);
  if (record.ok() && record->cancel_requested) {
    t.to = JobState::kCancelled;
    t.reason = record->cancel_reason.empty() ? "cancelled by user" : record->cancel_reason;
  } else if (report.succeeded()) {
    t.to = JobState::kSucceeded;
    t.reason = "all ranks exited with code 0";
  } else if (record.ok() && record->attempt < record->max_attempts) {
    t.to = JobState::kPending;
    t.update.finished_ms.reset();
    ending.requeue = QueuedJob{id, record->ranks, record->priority, record->submitted_ms};
    // The one hook for multi-host retries: the next attempt avoids the host that failed.
    const Placement placement = ParsePlacement(id, record->placement);
    const std::string blamed = BlamedHost(report, placement);
    std::string where;
    if (!blamed.empty()) {
      ending.requeue->avoid_hosts = {blamed};
      where = " on host " + blamed + " (" + RanksOn(placement, blamed) + ")";
    }
    t.reason = "attempt " + std::to_string(attempt) + " failed" + where + ": " + report.Describe() +
               "; retrying from the newest checkpoint" +
               (blamed.empty() ? "" : " on hosts other than " + blamed + " if they can hold it");
  } else {
    t.to = JobState::kFailed;
    t.reason = report.Describe();
  }
  return ending;
}

void JobSupervisor::RecordEndings(const std::vector<Ending>& endings) {
  if (endings.empty()) return;
  std::vector<TransitionRequest> transitions;
  transitions.reserve(endings.size());
  for (const Ending& e : endings) transitions.push_back(e.transition);
  const std::vector<Status> statuses = store_->Transitions(transitions);
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < endings.size(); ++i) {
    const int64_t id = endings[i].transition.id;
    if (!statuses[i].ok()) {
      Report(id, statuses[i].ToString());
    } else if (endings[i].requeue) {
      QueueLocked(*endings[i].requeue);
    }
    scheduler_->Release(id);
  }
}

// ---------------------------------------------------------------------------- scheduling

namespace {

// QueuedJob::blocked of a gated job, like squeue's REASON for held and dependent jobs.
std::string BlockedReason(const std::vector<int64_t>& waiting_for, bool held,
                          const std::string& never) {
  std::vector<std::string> parts;
  if (held) parts.push_back("held by user");
  if (!never.empty()) parts.push_back("dependency never satisfied: " + never);
  if (!waiting_for.empty()) {
    std::string ids;
    for (int64_t id : waiting_for) ids += (ids.empty() ? "" : ", ") + std::to_string(id);
    parts.push_back(std::string("waiting for job") + (waiting_for.size() == 1 ? " " : "s ") + ids +
                    " to succeed");
  }
  std::string out;
  for (const std::string& part : parts) out += (out.empty() ? "" : "; ") + part;
  return out;
}

}  // namespace

void JobSupervisor::ApplyGateLocked(int64_t id) {
  ++queue_version_;  // a job's `blocked` may change: the start order with it
  auto gate = gates_.find(id);
  QueuedJob* job = QueuedLocked(id);
  if (job == nullptr) {
    if (gate != gates_.end()) gates_.erase(gate);
    return;
  }
  if (gate == gates_.end()) {
    job->blocked.clear();
    return;
  }
  const Gate& g = gate->second;
  job->blocked = BlockedReason(g.waiting_for, g.held, g.never);
  if (job->blocked.empty()) gates_.erase(gate);
}

void JobSupervisor::RefreshGates() {
  std::vector<int64_t> dependencies;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, gate] : gates_) {
      dependencies.insert(dependencies.end(), gate.waiting_for.begin(), gate.waiting_for.end());
    }
  }
  if (dependencies.empty()) return;
  std::sort(dependencies.begin(), dependencies.end());
  dependencies.erase(std::unique(dependencies.begin(), dependencies.end()), dependencies.end());
  // Read outside mu_ (the store is not called under it); a state read here that changes before
  // the next pass is seen then.
  std::map<int64_t, JobState> states;
  for (int64_t dependency : dependencies) {
    StatusOr<JobRecord> record = store_->Get(dependency);
    if (record.ok()) states[dependency] = record->state;
  }
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<int64_t> ids;
  for (auto& [id, gate] : gates_) {
    std::vector<int64_t> still;
    for (int64_t dependency : gate.waiting_for) {
      auto state = states.find(dependency);
      if (state == states.end() || !IsTerminal(state->second)) {
        still.push_back(dependency);
      } else if (state->second != JobState::kSucceeded) {
        gate.never += (gate.never.empty() ? "job " : ", job ") + std::to_string(dependency) + " " +
                      ToString(state->second);
      }
    }
    gate.waiting_for = std::move(still);
    ids.push_back(id);
  }
  for (int64_t id : ids) ApplyGateLocked(id);
}

void JobSupervisor::ScheduleReady() {
  RefreshGates();
  std::vector<Placement> placements;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Nothing can start when the smallest queued job needs more slots than are free: the usual
    // state of a busy cluster, where a pass over a long queue would find nothing to start.
    if (pending_.empty() || pending_ranks_.begin()->first > scheduler_->free_slots()) return;
    placements = scheduler_->Schedule(pending_, NowMs());
    for (const Placement& p : placements) {
      UnqueueLocked(p.job_id);
      prepared_.erase(p.job_id);
      gates_.erase(p.job_id);
    }
  }
  // Start every placed job, then record all their transitions in one commit.
  struct Started {
    Placement placement;
    int attempt = 1;
    StatusOr<LaunchedJob> launched = Internal("not launched");
  };
  std::vector<Started> started;
  std::vector<TransitionRequest> transitions;
  std::vector<int64_t> skipped;
  std::vector<JobRecord> held;  // held between the pass and here: back to the queue
  for (const Placement& p : placements) {
    auto job = store_->Get(p.job_id);
    if (!job.ok() || job->state != JobState::kPending) {  // cancelled meanwhile
      skipped.push_back(p.job_id);
      continue;
    }
    if (job->held) {
      skipped.push_back(p.job_id);
      held.push_back(*job);
      continue;
    }
    std::string output_dir;
    Started s{p, job->attempt + 1, Launch(*job, p, &output_dir)};
    TransitionRequest t;
    t.id = p.job_id;
    t.expected_from = JobState::kPending;
    t.at_ms = NowMs();
    if (s.launched.ok()) {
      t.to = JobState::kRunning;
      t.reason = "started attempt " + std::to_string(s.attempt) + " on " + p.ToString();
      if (!output_dir.empty()) {
        t.reason += "; output_dir " + output_dir;
        t.update.output_dir = output_dir;
      }
      t.update.attempt = s.attempt;
      t.update.started_ms = t.at_ms;
      // What `status` shows of an attempt is this attempt's: an earlier one's exit and last
      // lines must not linger while it runs, nor after it ends.
      t.update.exit_code = 0;
      t.update.signal = 0;
      t.update.failing_rank = -1;
      t.update.last_log_lines = "";
      t.update.launcher_backend = s.launched->backend;
      t.update.launcher_handle = s.launched->handle;
      t.update.placement = p.ToString();
    } else {
      t.to = JobState::kFailed;
      t.reason = "could not start: " + s.launched.status().message();
    }
    transitions.push_back(std::move(t));
    started.push_back(std::move(s));
  }
  const std::vector<Status> statuses = store_->Transitions(transitions);
  std::vector<LaunchedJob> to_stop;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (int64_t id : skipped) scheduler_->Release(id);
    for (const JobRecord& job : held) {
      QueueLocked({job.id, job.ranks, job.priority, job.submitted_ms});
      gates_[job.id].held = true;
      ApplyGateLocked(job.id);
    }
    for (size_t i = 0; i < started.size(); ++i) {
      Started& s = started[i];
      const int64_t id = s.placement.job_id;
      if (s.launched.ok() && statuses[i].ok()) {
        metrics_.erase(id);  // figures of an earlier attempt are not this one's
        Running run;
        run.launched = *s.launched;
        run.attempt = s.attempt;
        run.attempt_dir = AttemptDir(id, s.attempt);
        running_[id] = std::move(run);
        continue;
      }
      if (s.launched.ok()) {  // cancelled between schedule and launch, or RUNNING not recorded
        to_stop.push_back(*s.launched);
        std::error_code ec;
        fs::remove(fs::path(AttemptDir(id, s.attempt)) / kLaunchRecordFile, ec);
      }
      scheduler_->Release(id);
    }
  }
  for (const LaunchedJob& launched : to_stop) {
    (void)launcher_->Stop(launched, options_.cancel_grace);
  }
}

StatusOr<std::string> JobSupervisor::PrepareSpec(const JobRecord& job,
                                                 std::string* output_dir) const {
  if (options_.paths == nullptr) return job.spec_yaml;
  const std::string source = "<job " + std::to_string(job.id) + " spec>";
  std::map<std::string, std::string> defaults;
  bool gives_output_dir = false;
  try {
    const YAML::Node root = YAML::Load(job.spec_yaml);
    gives_output_dir = root.IsMap() && root["output_dir"].IsDefined();
  } catch (const YAML::Exception& e) {
    return InvalidArgument(source + ": " + e.what());
  }
  if (!gives_output_dir) {
    defaults["output_dir"] = QuotedYaml("runs/" + job.name + "/" + JobRunDirName(job));
  }
  DTRAIN_ASSIGN_OR_RETURN(std::string text, ApplyOverrides(job.spec_yaml, defaults));
  DTRAIN_ASSIGN_OR_RETURN(JobSpec spec, ParseJobSpec(text, source));
  std::vector<std::pair<std::string, std::string>> fields = {
      {"data.path", spec.data.path},
      {"output_dir", spec.output_dir},
      {"checkpoint.dir", spec.checkpoint.dir},
  };
  if (spec.task_spec != nullptr) {
    for (auto& field : spec.task_spec->Paths()) fields.push_back(std::move(field));
  }
  std::map<std::string, std::string> resolved;
  std::string problems;
  for (const auto& [field, path] : fields) {
    if (path.empty()) continue;
    StatusOr<std::string> confined = options_.paths->Confine(field, path);
    if (!confined.ok()) {
      problems += (problems.empty() ? "" : "; ") + confined.status().message();
      continue;
    }
    resolved[field] = QuotedYaml(*confined);
    if (field == "output_dir") *output_dir = *confined;
  }
  if (!problems.empty()) {
    return FailedPrecondition(
        "paths no longer pass the allowed-roots check made at submit (a "
        "symlink changed while the job waited?): " +
        problems);
  }
  DTRAIN_ASSIGN_OR_RETURN(std::string prepared, ApplyOverrides(text, resolved));
  DTRAIN_RETURN_IF_ERROR(ParseJobSpec(prepared, source).status());
  return prepared;
}

StatusOr<LaunchedJob> JobSupervisor::Launch(const JobRecord& job, const Placement& placement,
                                            std::string* output_dir) {
  DTRAIN_ASSIGN_OR_RETURN(const std::string spec_yaml, PrepareSpec(job, output_dir));
  const int attempt = job.attempt + 1;
  LaunchRequest request;
  request.job_id = job.id;
  request.attempt = attempt;
  request.spec_path = (fs::path(JobDir(job.id)) / "spec.yaml").string();
  request.placement = placement;
  request.resume = attempt > 1;
  request.attempt_dir = AttemptDir(job.id, attempt);
  std::error_code ec;
  fs::create_directories(request.attempt_dir, ec);
  if (ec) return Internal("cannot create '" + request.attempt_dir + "': " + ec.message());
  DTRAIN_RETURN_IF_ERROR(WriteFileAtomically(request.spec_path, spec_yaml, kOwnerOnlyFileMode));
  DTRAIN_ASSIGN_OR_RETURN(LaunchedJob launched, launcher_->Launch(request));
  const nlohmann::json record = {{"backend", launched.backend},
                                 {"handle", launched.handle},
                                 {"placement", placement.ToString()}};
  Status saved = WriteFileAtomically((fs::path(request.attempt_dir) / kLaunchRecordFile).string(),
                                     record.dump(), kOwnerOnlyFileMode);
  if (!saved.ok()) Report(job.id, saved.ToString());  // only a restart in this moment needs it
  return launched;
}

// ---------------------------------------------------------------------------- for the handlers

Status JobSupervisor::CanEverFit(int ranks) const {
  std::lock_guard<std::mutex> lock(mu_);
  return scheduler_->CanEverFit(ranks);
}

void JobSupervisor::Enqueue(const QueuedJob& job, const JobGate& gate) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    QueueLocked(job);
    if (gate.held || !gate.after.empty()) {
      gates_[job.id] = Gate{gate.held, gate.after, ""};
      ApplyGateLocked(job.id);
    }
  }
  Wake();
}

StatusOr<JobRecord> JobSupervisor::SetHeld(int64_t id, bool held) {
  DTRAIN_RETURN_IF_ERROR(store_->SetHeld(id, held));
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Not queued here: the job is between a pass and its start, which reads the hold back.
    if (pending_index_.count(id) != 0) {
      gates_[id].held = held;
      ApplyGateLocked(id);
    }
  }
  if (!held) Wake();
  return store_->Get(id);
}

StatusOr<JobRecord> JobSupervisor::SetPriority(int64_t id, int priority) {
  DTRAIN_RETURN_IF_ERROR(store_->SetPriority(id, priority));
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (QueuedJob* job = QueuedLocked(id); job != nullptr) {
      job->priority = priority;
      ++queue_version_;
    }
  }
  Wake();
  return store_->Get(id);
}

StatusOr<LogChunk> JobSupervisor::ReadRankLog(const JobRecord& job, int rank, RankStream stream,
                                              int64_t offset, size_t max_bytes) const {
  const std::string id = "job " + std::to_string(job.id);
  if (job.launcher_backend.empty()) return FailedPrecondition(id + " has not started yet");
  if (job.compacted_ms != 0) {
    return FailedPrecondition(id + "'s output was removed by the coordinator's retention");
  }
  if (job.launcher_backend != launcher_->name()) {
    return FailedPrecondition(id + " was launched by the '" + job.launcher_backend +
                              "' launcher, not this coordinator's '" + launcher_->name() + "'");
  }
  return launcher_->ReadRankLog({job.launcher_backend, job.launcher_handle}, rank, stream, offset,
                                max_bytes);
}

StatusOr<JobRecord> JobSupervisor::Cancel(int64_t id) {
  DTRAIN_ASSIGN_OR_RETURN(JobRecord record, store_->Get(id));
  if (IsTerminal(record.state)) {
    return FailedPrecondition("job " + std::to_string(id) + " is already " +
                              ToString(record.state));
  }
  if (record.state == JobState::kPending) {
    Status s = store_->Transition(id, JobState::kPending, JobState::kCancelled, "cancelled by user",
                                  NowMs());
    if (s.ok()) {
      std::optional<int> prepared;
      {
        std::lock_guard<std::mutex> lock(mu_);
        UnqueueLocked(id);
        gates_.erase(id);
        auto it = prepared_.find(id);
        if (it != prepared_.end()) prepared = it->second;
        prepared_.erase(id);
      }
      if (prepared) (void)launcher_->Unprepare(id, *prepared);
      return store_->Get(id);
    }
  }
  // Running (or it started while we looked): stop the whole launch, then record.
  (void)store_->SetCancelRequested(id);
  std::optional<Running> run;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = running_.find(id);
    if (it != running_.end()) run = it->second;
  }
  if (run) {
    DTRAIN_RETURN_IF_ERROR(launcher_->Stop(run->launched, options_.cancel_grace));
    bool claimed = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      claimed = running_.erase(id) > 0;
    }
    if (claimed) {
      ExitReport report;
      report.signal = 15;
      RecordEndings({PlanEnding(id, run->attempt, report)});
    }
  }
  // When the control loop claimed the ending first, its commit is a moment away: answer with the
  // recorded outcome rather than a RUNNING that is already over.
  const auto deadline =
      std::chrono::steady_clock::now() + options_.cancel_grace + kCancelSettleTime;
  for (;;) {
    DTRAIN_ASSIGN_OR_RETURN(JobRecord now, store_->Get(id));
    if (now.state != JobState::kRunning || !run || std::chrono::steady_clock::now() > deadline) {
      return now;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

std::map<std::string, double> JobSupervisor::Metrics(int64_t id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto m = metrics_.find(id);
  return m == metrics_.end() ? std::map<std::string, double>() : m->second;
}

std::map<int64_t, JobSupervisor::QueueStanding> JobSupervisor::QueueStandings(
    const std::vector<int64_t>& ids) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::map<int64_t, QueueStanding> standings;
  for (int64_t id : ids) {
    const QueuedJob* job = QueuedLocked(id);
    if (job == nullptr) continue;
    // Held or waiting for dependencies: no place in the start order (position 0), and the why.
    standings[id] = QueueStanding{0, job->blocked};
  }
  if (standings.empty()) return standings;
  // The order of an unchanged queue is reused for a second: every page of `dtrain list` and
  // every `status` asks, and ordering 100,000 queued jobs takes about 20 ms. Within that second
  // only aging can change it, by at most aging_per_minute / 60 priority points.
  const int64_t now = NowMs();
  if (start_order_version_ != queue_version_ || now - start_order_ms_ > 1000) {
    start_order_ = scheduler_->StartOrder(pending_, now);
    start_order_version_ = queue_version_;
    start_order_ms_ = now;
  }
  const std::vector<int64_t>& order = start_order_;
  const int free = scheduler_->free_slots();
  const int total = scheduler_->cluster().total_slots();
  for (size_t i = 0; i < order.size(); ++i) {
    const auto wanted = standings.find(order[i]);
    if (wanted == standings.end() || !wanted->second.reason.empty()) continue;
    const QueuedJob& job = *QueuedLocked(order[i]);
    QueueStanding& s = wanted->second;
    s.position = static_cast<int>(i) + 1;
    const std::string ahead =
        i == 0 ? "" : std::to_string(i) + (i == 1 ? " job ahead" : " jobs ahead");
    if (job.ranks > free) {
      s.reason = "waiting for " + std::to_string(job.ranks) + " slot" +
                 (job.ranks == 1 ? "" : "s") + " (" + std::to_string(free) + " of " +
                 std::to_string(total) + " free)" + (ahead.empty() ? "" : "; " + ahead);
    } else if (!ahead.empty()) {
      s.reason = ahead;
    } else {
      s.reason = "starting at the next scheduling pass";
    }
  }
  return standings;
}

ClusterView JobSupervisor::Cluster() const {
  std::lock_guard<std::mutex> lock(mu_);
  ClusterView view;
  const auto free = scheduler_->FreeByHost();
  const auto& hosts = scheduler_->cluster().hosts;
  for (size_t i = 0; i < hosts.size(); ++i) {
    view.hosts.push_back({hosts[i].name, hosts[i].slots, free[i].second});
  }
  view.total_slots = scheduler_->cluster().total_slots();
  view.used_slots = scheduler_->used_slots();
  view.free_slots = scheduler_->free_slots();
  view.queue_length = static_cast<int>(pending_.size());
  view.running_jobs = static_cast<int>(running_.size());
  return view;
}

}  // namespace dtrain::coordinator
