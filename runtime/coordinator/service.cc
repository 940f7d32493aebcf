#include "runtime/coordinator/service.h"

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "runtime/spec/job_spec.h"
#include "runtime/spec/overrides.h"

namespace dtrain::coordinator {
namespace {

namespace fs = std::filesystem;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

grpc::Status ToGrpc(const Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), s.message());
}

v1::JobState ToProto(JobState s) {
  switch (s) {
    case JobState::kPending:
      return v1::PENDING;
    case JobState::kRunning:
      return v1::RUNNING;
    case JobState::kSucceeded:
      return v1::SUCCEEDED;
    case JobState::kFailed:
      return v1::FAILED;
    case JobState::kCancelled:
      return v1::CANCELLED;
  }
  return v1::JOB_STATE_UNSPECIFIED;
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

Status WriteFileAtomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) return Internal("cannot write '" + tmp + "'");
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return Internal("cannot rename '" + tmp + "': " + ec.message());
  return Status::Ok();
}

}  // namespace

CoordinatorService::CoordinatorService(ServiceOptions options, std::unique_ptr<JobStore> store,
                                       std::unique_ptr<Scheduler> scheduler,
                                       std::unique_ptr<Launcher> launcher, PathPolicy paths,
                                       rpc::TokenAuthenticator auth)
    : options_(std::move(options)),
      store_(std::move(store)),
      launcher_(std::move(launcher)),
      paths_(std::move(paths)),
      auth_(std::move(auth)),
      scheduler_(std::move(scheduler)) {}

CoordinatorService::~CoordinatorService() { Stop(); }

std::string CoordinatorService::JobDir(int64_t id) const {
  return (fs::path(options_.state_dir) / "jobs" / std::to_string(id)).string();
}

Status CoordinatorService::Start() {
  DTRAIN_RETURN_IF_ERROR(Recover());
  loop_ = std::thread([this] { Loop(); });
  return Status::Ok();
}

Status CoordinatorService::Recover() {
  DTRAIN_ASSIGN_OR_RETURN(std::vector<JobRecord> active, store_->Active());
  for (const JobRecord& job : active) {
    if (job.state == JobState::kPending) {
      std::lock_guard<std::mutex> lock(mu_);
      pending_[job.id] = {job.id, job.ranks, job.priority, job.submitted_ms};
      continue;
    }
    if (job.state != JobState::kRunning) continue;
    Running run;
    run.attempt = job.attempt;
    run.launched.shim = {job.launcher_pid, job.launcher_start_time};
    run.launched.log_path = job.log_path;
    run.launched.exit_path = (fs::path(job.log_path).parent_path() / "exit").string();
    std::ifstream offset(fs::path(job.log_path).parent_path() / "tail.offset");
    offset >> run.log_offset;
    auto polled = launcher_->Poll(run.launched);
    const bool known = polled.ok() && (!polled->has_value() || fs::exists(run.launched.exit_path));
    if (known) {
      // Alive, or ended while we were away with its exit recorded: follow it as before.
      std::lock_guard<std::mutex> lock(mu_);
      Status reserved = scheduler_->Reserve(ParsePlacement(job.id, job.placement));
      if (!reserved.ok()) {
        std::fprintf(stderr, "[coordinator] job %lld: %s\n", static_cast<long long>(job.id),
                     reserved.ToString().c_str());
      }
      running_[job.id] = std::move(run);
      continue;
    }
    ExitReport lost = polled.ok() && polled->has_value() ? **polled : ExitReport();
    lost.exit_code = lost.exit_code == 0 ? -1 : lost.exit_code;
    lost.last_lines += "(found gone after a coordinator restart)\n";
    {
      std::lock_guard<std::mutex> lock(mu_);
      scheduler_->Reserve(ParsePlacement(job.id, job.placement)).ok();
    }
    RecordEndings({PlanEnding(job.id, run.attempt, lost)});
  }
  return Status::Ok();
}

void CoordinatorService::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (loop_.joinable()) loop_.join();
}

void CoordinatorService::Wake() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    woken_ = true;
  }
  wake_.notify_all();
}

void CoordinatorService::Loop() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait_for(lock, options_.poll_interval, [&] { return woken_ || stopping_; });
      if (stopping_) return;
      woken_ = false;
    }
    Tick();
  }
}

void CoordinatorService::Tick() {
  FollowRunning();
  ScheduleReady();
}

// ---------------------------------------------------------------------------- following jobs

void CoordinatorService::RecordProgress(int64_t id, const std::string& line) {
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
  } else if (kind == "finished" && event.contains("summary") && event["summary"].is_object()) {
    const auto& summary = event["summary"];
    if (summary.contains("test") && summary["test"].is_object()) {
      for (auto& [k, v] : summary["test"].items()) {
        if (v.is_number()) m["test." + k] = v.get<double>();
      }
    }
  }
}

void CoordinatorService::TailLog(int64_t id, Running& run, std::vector<NewEvent>* events) {
  std::ifstream in(run.launched.log_path, std::ios::binary);
  if (!in) return;
  in.seekg(run.log_offset);
  std::string chunk(64 * 1024, '\0');
  int taken = 0;
  while (taken < options_.max_events_per_tick) {
    in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    const std::streamsize n = in.gcount();
    if (n <= 0) break;
    std::string data = run.partial_line + chunk.substr(0, static_cast<size_t>(n));
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
    run.log_offset += n;
    if (n < static_cast<std::streamsize>(chunk.size())) break;
  }
  if (taken == 0) return;
  // Where to continue after a coordinator restart (a few lines may repeat, none are lost).
  std::ofstream(fs::path(run.launched.log_path).parent_path() / "tail.offset")
      << run.log_offset - static_cast<int64_t>(run.partial_line.size());
}

void CoordinatorService::FollowRunning() {
  std::vector<int64_t> ids;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, run] : running_) ids.push_back(id);
  }
  // One pass: every job's new lines, then every ended job's final state, each committed as one
  // batch, so a pass costs two fsyncs however many jobs it follows (and shares them with
  // concurrent submits). Events go first: a terminal state implies its lines are stored.
  std::vector<NewEvent> events;
  struct Ended {
    int64_t id;
    int attempt;
    ExitReport report;
  };
  std::vector<Ended> ended;
  for (int64_t id : ids) {
    Running run;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = running_.find(id);
      if (it == running_.end()) continue;  // cancelled meanwhile
      run = it->second;
    }
    TailLog(id, run, &events);
    auto polled = launcher_->Poll(run.launched);
    const bool exited = polled.ok() && polled->has_value();
    if (exited) TailLog(id, run, &events);  // the last lines written before the exit
    std::lock_guard<std::mutex> lock(mu_);
    auto it = running_.find(id);
    if (it == running_.end()) continue;
    it->second.log_offset = run.log_offset;
    it->second.partial_line = run.partial_line;
    if (exited) {
      // Claimed here: a concurrent CancelJob no longer finds it and leaves the ending to us.
      ended.push_back({id, it->second.attempt, **polled});
      running_.erase(it);
    }
  }
  (void)store_->AppendEvents(events);
  std::vector<Ending> endings;
  endings.reserve(ended.size());
  for (const Ended& e : ended) endings.push_back(PlanEnding(e.id, e.attempt, e.report));
  RecordEndings(endings);
}

CoordinatorService::Ending CoordinatorService::PlanEnding(int64_t id, int attempt,
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
  t.update.last_log_lines = report.last_lines;
  auto record = store_->Get(id);
  if (record.ok() && record->cancel_requested) {
    t.to = JobState::kCancelled;
    t.reason = "cancelled by user";
  } else if (report.succeeded()) {
    t.to = JobState::kSucceeded;
    t.reason = "all ranks exited with code 0";
  } else if (record.ok() && record->attempt < record->max_attempts) {
    t.to = JobState::kPending;
    t.update.finished_ms.reset();
    t.reason = "attempt " + std::to_string(attempt) + " failed: " + report.Describe() +
               "; retrying from the newest checkpoint";
    ending.requeue = QueuedJob{id, record->ranks, record->priority, record->submitted_ms};
  } else {
    t.to = JobState::kFailed;
    t.reason = report.Describe();
  }
  return ending;
}

void CoordinatorService::RecordEndings(const std::vector<Ending>& endings) {
  if (endings.empty()) return;
  std::vector<TransitionRequest> transitions;
  transitions.reserve(endings.size());
  for (const Ending& e : endings) transitions.push_back(e.transition);
  const std::vector<Status> statuses = store_->Transitions(transitions);
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < endings.size(); ++i) {
    const int64_t id = endings[i].transition.id;
    if (!statuses[i].ok()) {
      std::fprintf(stderr, "[coordinator] job %lld: %s\n", static_cast<long long>(id),
                   statuses[i].ToString().c_str());
    } else if (endings[i].requeue) {
      pending_[id] = *endings[i].requeue;
    }
    scheduler_->Release(id);
  }
}

// ---------------------------------------------------------------------------- scheduling

void CoordinatorService::ScheduleReady() {
  std::vector<Placement> placements;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (pending_.empty()) return;
    std::vector<QueuedJob> queue;
    queue.reserve(pending_.size());
    for (const auto& [id, job] : pending_) queue.push_back(job);
    placements = scheduler_->Schedule(queue, NowMs());
    for (const Placement& p : placements) pending_.erase(p.job_id);
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
  for (const Placement& p : placements) {
    auto job = store_->Get(p.job_id);
    if (!job.ok() || job->state != JobState::kPending) {  // cancelled meanwhile
      skipped.push_back(p.job_id);
      continue;
    }
    Started s{p, job->attempt + 1, Launch(*job, p)};
    TransitionRequest t;
    t.id = p.job_id;
    t.expected_from = JobState::kPending;
    t.at_ms = NowMs();
    if (s.launched.ok()) {
      t.to = JobState::kRunning;
      t.reason = "started attempt " + std::to_string(s.attempt) + " on " + p.ToString();
      t.update.attempt = s.attempt;
      t.update.started_ms = t.at_ms;
      t.update.launcher_pid = s.launched->shim.pid;
      t.update.launcher_start_time = s.launched->shim.start_time;
      t.update.placement = p.ToString();
      t.update.log_path = s.launched->log_path;
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
    for (size_t i = 0; i < started.size(); ++i) {
      Started& s = started[i];
      const int64_t id = s.placement.job_id;
      if (s.launched.ok() && statuses[i].ok()) {
        Running run;
        run.launched = *s.launched;
        run.attempt = s.attempt;
        running_[id] = std::move(run);
        continue;
      }
      if (s.launched.ok()) to_stop.push_back(*s.launched);  // cancelled between schedule and launch
      scheduler_->Release(id);
    }
  }
  for (const LaunchedJob& launched : to_stop)
    (void)launcher_->Stop(launched, options_.cancel_grace);
}

StatusOr<LaunchedJob> CoordinatorService::Launch(const JobRecord& job, const Placement& placement) {
  const int attempt = job.attempt + 1;
  const fs::path dir = JobDir(job.id);
  LaunchRequest request;
  request.job_id = job.id;
  request.attempt = attempt;
  request.spec_path = (dir / "spec.yaml").string();
  request.placement = placement;
  request.resume = attempt > 1;
  request.attempt_dir = (dir / ("attempt-" + std::to_string(attempt))).string();
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Internal("cannot create '" + dir.string() + "': " + ec.message());
  DTRAIN_RETURN_IF_ERROR(WriteFileAtomically(request.spec_path, job.spec_yaml));
  return launcher_->Launch(request);
}

// ---------------------------------------------------------------------------- handlers

grpc::Status CoordinatorService::SubmitJob(grpc::ServerContext* context,
                                           const v1::SubmitJobRequest* request,
                                           v1::SubmitJobResponse* response) {
  if (grpc::Status a = auth_.Check(*context); !a.ok()) return a;
  if (request->spec_yaml().size() > options_.max_spec_bytes) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "spec_yaml is " + std::to_string(request->spec_yaml().size()) +
                            " bytes; the limit is " + std::to_string(options_.max_spec_bytes));
  }
  if (request->ranks() < 0 || request->max_attempts() < 0) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "ranks and max_attempts must not be negative");
  }
  std::map<std::string, std::string> overrides(request->overrides().begin(),
                                               request->overrides().end());
  auto text = ApplyOverrides(request->spec_yaml(), overrides);
  if (!text.ok()) return ToGrpc(text.status());
  auto spec = ParseJobSpec(*text, "<submitted spec>");
  if (!spec.ok()) return ToGrpc(spec.status());
  if (Status p = paths_.CheckSpec(*spec); !p.ok()) return ToGrpc(p);
  NewJob job;
  job.name = spec->name;
  job.spec_yaml = *text;
  job.ranks = request->ranks() > 0 ? request->ranks() : spec->distributed.ranks;
  job.priority = request->priority();
  job.max_attempts =
      request->max_attempts() > 0 ? request->max_attempts() : spec->restart.max_attempts;
  job.submitted_ms = NowMs();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (Status fit = scheduler_->CanEverFit(job.ranks); !fit.ok()) return ToGrpc(fit);
  }
  auto id = store_->Insert(job);
  if (!id.ok()) return ToGrpc(id.status());
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_[*id] = {*id, job.ranks, job.priority, job.submitted_ms};
  }
  response->set_job_id(*id);
  Wake();
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::ToJob(const JobRecord& r, v1::Job* out) const {
  out->set_job_id(r.id);
  out->set_name(r.name);
  out->set_state(ToProto(r.state));
  out->set_ranks(r.ranks);
  out->set_priority(r.priority);
  out->set_attempt(r.attempt);
  out->set_max_attempts(r.max_attempts);
  out->set_submitted_ms(r.submitted_ms);
  out->set_started_ms(r.started_ms);
  out->set_finished_ms(r.finished_ms);
  out->set_reason(r.reason);
  out->set_placement(r.placement);
  out->set_failing_rank(r.failing_rank);
  out->set_exit_code(r.exit_code);
  out->set_signal(r.signal);
  out->set_last_log_lines(r.last_log_lines);
  out->set_spec_yaml(r.spec_yaml);
  auto history = store_->History(r.id);
  if (history.ok()) {
    for (const auto& t : *history) {
      v1::Transition* p = out->add_history();
      p->set_from(ToProto(t.from));
      p->set_to(ToProto(t.to));
      p->set_attempt(t.attempt);
      p->set_at_ms(t.at_ms);
      p->set_reason(t.reason);
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto m = metrics_.find(r.id);
  if (m != metrics_.end()) out->mutable_metrics()->insert(m->second.begin(), m->second.end());
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::GetJob(grpc::ServerContext* context,
                                        const v1::GetJobRequest* request, v1::Job* response) {
  if (grpc::Status a = auth_.Check(*context); !a.ok()) return a;
  auto record = store_->Get(request->job_id());
  if (!record.ok()) return ToGrpc(record.status());
  return ToJob(*record, response);
}

grpc::Status CoordinatorService::ListJobs(grpc::ServerContext* context,
                                          const v1::ListJobsRequest* request,
                                          v1::ListJobsResponse* response) {
  if (grpc::Status a = auth_.Check(*context); !a.ok()) return a;
  ListFilter filter;
  if (request->state() != v1::JOB_STATE_UNSPECIFIED) {
    auto state = JobStateFromString(v1::JobState_Name(request->state()));
    if (!state) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "unknown state");
    filter.state = *state;
  }
  filter.limit = request->page_size() > 0 ? std::min(request->page_size(), 1000) : 100;
  if (!request->page_token().empty()) {
    try {
      filter.after_id = std::stoll(request->page_token());
    } catch (const std::exception&) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "page_token '" + request->page_token() + "' is not one we issued");
    }
  }
  auto jobs = store_->List(filter);
  if (!jobs.ok()) return ToGrpc(jobs.status());
  for (const JobRecord& r : *jobs) {
    v1::Job* job = response->add_jobs();
    ToJob(r, job);
    job->clear_spec_yaml();
    job->clear_history();
  }
  if (static_cast<int>(jobs->size()) == filter.limit) {
    response->set_next_page_token(std::to_string(jobs->back().id));
  }
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::CancelJob(grpc::ServerContext* context,
                                           const v1::CancelJobRequest* request, v1::Job* response) {
  if (grpc::Status a = auth_.Check(*context); !a.ok()) return a;
  const int64_t id = request->job_id();
  auto record = store_->Get(id);
  if (!record.ok()) return ToGrpc(record.status());
  if (IsTerminal(record->state)) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "job " + std::to_string(id) + " is already " + ToString(record->state));
  }
  if (record->state == JobState::kPending) {
    Status s = store_->Transition(id, JobState::kPending, JobState::kCancelled, "cancelled by user",
                                  NowMs());
    if (s.ok()) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        pending_.erase(id);
      }
      auto cancelled = store_->Get(id);
      if (!cancelled.ok()) return ToGrpc(cancelled.status());
      return ToJob(*cancelled, response);
    }
  }
  // Running (or it started while we looked): stop the whole process tree, then record.
  (void)store_->SetCancelRequested(id);
  std::optional<Running> run;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = running_.find(id);
    if (it != running_.end()) run = it->second;
  }
  if (run) {
    Status stopped = launcher_->Stop(run->launched, options_.cancel_grace);
    if (!stopped.ok()) return ToGrpc(stopped);
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
      std::chrono::steady_clock::now() + options_.cancel_grace + std::chrono::seconds(5);
  for (;;) {
    auto final_record = store_->Get(id);
    if (!final_record.ok()) return ToGrpc(final_record.status());
    if (final_record->state != JobState::kRunning || !run ||
        std::chrono::steady_clock::now() > deadline) {
      return ToJob(*final_record, response);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

grpc::Status CoordinatorService::WatchJob(grpc::ServerContext* context,
                                          const v1::WatchJobRequest* request,
                                          grpc::ServerWriter<v1::JobEvent>* writer) {
  if (grpc::Status a = auth_.Check(*context); !a.ok()) return a;
  const int64_t id = request->job_id();
  auto record = store_->Get(id);
  if (!record.ok()) return ToGrpc(record.status());
  int64_t after = request->after_seq();
  for (;;) {
    if (context->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "client left");
    // Read the state before the events, so a terminal state implies all its events are seen.
    auto now = store_->Get(id);
    if (!now.ok()) return ToGrpc(now.status());
    const bool terminal = IsTerminal(now->state);
    for (;;) {
      auto events = store_->EventsAfter(id, after, 500);
      if (!events.ok()) return ToGrpc(events.status());
      for (const JobEvent& e : *events) {
        v1::JobEvent out;
        out.set_job_id(id);
        out.set_seq(e.seq);
        out.set_at_ms(e.at_ms);
        out.set_kind(e.kind);
        out.set_payload(e.payload);
        if (!writer->Write(out)) return grpc::Status(grpc::StatusCode::CANCELLED, "client left");
        after = e.seq;
      }
      if (events->size() < 500) break;
    }
    if (!request->follow() || terminal) return grpc::Status::OK;
    std::this_thread::sleep_for(options_.poll_interval);
  }
}

grpc::Status CoordinatorService::GetCluster(grpc::ServerContext* context,
                                            const v1::GetClusterRequest* request,
                                            v1::Cluster* response) {
  if (grpc::Status a = auth_.Check(*context); !a.ok()) return a;
  std::lock_guard<std::mutex> lock(mu_);
  const int pending = static_cast<int>(pending_.size());
  const int running = static_cast<int>(running_.size());
  const auto free = scheduler_->FreeByHost();
  const auto& hosts = scheduler_->cluster().hosts;
  for (size_t i = 0; i < hosts.size(); ++i) {
    v1::HostSlots* h = response->add_hosts();
    h->set_name(hosts[i].name);
    h->set_total(hosts[i].slots);
    h->set_free(free[i].second);
    h->set_used(hosts[i].slots - free[i].second);
  }
  response->set_total_slots(scheduler_->cluster().total_slots());
  response->set_used_slots(scheduler_->used_slots());
  response->set_free_slots(scheduler_->free_slots());
  response->set_queue_length(pending);
  response->set_running_jobs(running);
  return grpc::Status::OK;
}

}  // namespace dtrain::coordinator
