#include "runtime/coordinator/service.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "runtime/spec/job_spec.h"
#include "runtime/spec/overrides.h"

namespace dtrain::coordinator {
namespace {

constexpr int kWatchBatch = 500;  // events read from the store at a time
// Bounds of SubmitJobRequest's numbers: the job spec's own caps (distributed.ranks,
// restart.max_attempts), so the API accepts nothing the spec would refuse.
constexpr int kMaxRanks = 65536;
constexpr int kMaxAttempts = 100;
constexpr int kMaxPriority = 1000;
constexpr size_t kMaxSpecNameBytes = 1024;
constexpr size_t kMaxNameFilterBytes = 256;
constexpr char kDefaultSpecName[] = "<submitted spec>";
// SubmitJobRequest.after: at most this many dependencies.
constexpr int kMaxDependencies = 64;
constexpr size_t kMaxOwnerBytes = 64;
// SubmitJobArrayRequest.elements: the trials one sweep may queue.
constexpr int kMaxArrayElements = 1000;
// GetRankLogRequest.max_bytes: 0 means the default; a reply stays far below gRPC's 4 MB.
constexpr size_t kDefaultRankLogBytes = 64 * 1024;
constexpr int kMaxRankLogBytes = 1024 * 1024;
// ListJobsRequest.page_size: 0 means the default; larger values are coerced to the maximum.
constexpr int kDefaultPageSize = 100;
constexpr int kMaxPageSize = 1000;

grpc::Status Invalid(const std::string& message) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, message);
}

// "" when `value` is in [low, high], else "field: expected low to high (note), got value".
std::string CheckRange(const char* field, int value, int low, int high, const char* note) {
  if (value >= low && value <= high) return "";
  return std::string(field) + ": expected " + std::to_string(low) + " to " + std::to_string(high) +
         note + ", got " + std::to_string(value);
}

// Drops what `view` leaves out; `unspecified` is the view an unset field stands for.
void ApplyView(v1::JobView view, v1::JobView unspecified, v1::Job* job) {
  if (view == v1::JOB_VIEW_UNSPECIFIED) view = unspecified;
  if (view == v1::JOB_VIEW_FULL) return;
  job->clear_spec_yaml();
  job->clear_history();
  if (view == v1::JOB_VIEW_BASIC) job->clear_last_log_lines();
}

void AddStanding(const std::map<int64_t, JobSupervisor::QueueStanding>& standings, v1::Job* job) {
  auto it = standings.find(job->job_id());
  if (it == standings.end()) return;
  job->set_queue_position(it->second.position);
  job->set_waiting_reason(it->second.reason);
}

// JobEvent.type and, for progress, the payload parsed (left unset when it does not parse: the
// string payload is still there).
void SetTyped(const JobEvent& e, v1::JobEvent* out) {
  if (e.kind == "state") {
    out->set_type(v1::JOB_EVENT_TYPE_STATE);
  } else if (e.kind == "log") {
    out->set_type(v1::JOB_EVENT_TYPE_LOG);
  } else if (e.kind == "progress") {
    out->set_type(v1::JOB_EVENT_TYPE_PROGRESS);
    google::protobuf::util::JsonParseOptions options;
    options.ignore_unknown_fields = true;  // a newer worker's fields
    if (!google::protobuf::util::JsonStringToMessage(e.payload, out->mutable_progress(), options)
             .ok()) {
      out->clear_progress();
    }
  }
}

// "" when `owner` is a valid owner (1 to 64 of [A-Za-z0-9._@-]; "" is valid too), else why not.
std::string CheckOwner(const char* field, const std::string& owner) {
  const bool ok =
      owner.size() <= kMaxOwnerBytes && std::all_of(owner.begin(), owner.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '.' || c == '_' || c == '@' || c == '-';
      });
  if (ok) return "";
  return std::string(field) + ": expected at most " + std::to_string(kMaxOwnerBytes) +
         " characters of A-Z a-z 0-9 . _ @ -";
}

grpc::Status CheckView(v1::JobView view) {
  if (v1::JobView_IsValid(view)) return grpc::Status::OK;
  return Invalid("view: unknown value " + std::to_string(view) +
                 "; expected JOB_VIEW_BASIC or JOB_VIEW_FULL");
}

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

}  // namespace

CoordinatorService::CoordinatorService(ServiceOptions options, JobStore* store,
                                       JobSupervisor* supervisor, PathPolicy paths,
                                       rpc::TokenAuthenticator auth)
    : options_(std::move(options)),
      store_(store),
      supervisor_(supervisor),
      paths_(std::move(paths)),
      auth_(std::move(auth)) {}

// ---------------------------------------------------------------------------- handlers

grpc::Status CoordinatorService::PrepareJob(const v1::SubmitJobRequest* request,
                                            const std::map<std::string, std::string>& element,
                                            NewJob* out) const {
  if (request->spec_yaml().size() > options_.max_spec_bytes) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "spec_yaml is " + std::to_string(request->spec_yaml().size()) +
                            " bytes; the limit is " + std::to_string(options_.max_spec_bytes));
  }
  std::string problems;
  for (const std::string& p :
       {CheckRange("ranks", request->ranks(), 0, kMaxRanks, " (0: the spec's distributed.ranks)"),
        CheckRange("max_attempts", request->max_attempts(), 0, kMaxAttempts,
                   " (0: the spec's restart.max_attempts)"),
        CheckRange("priority", request->priority(), -kMaxPriority, kMaxPriority, "")}) {
    if (!p.empty()) problems += (problems.empty() ? "" : "; ") + p;
  }
  const std::string& given_name = request->spec_name();
  if (given_name.size() > kMaxSpecNameBytes ||
      std::any_of(given_name.begin(), given_name.end(),
                  [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; })) {
    problems += std::string(problems.empty() ? "" : "; ") + "spec_name: expected at most " +
                std::to_string(kMaxSpecNameBytes) + " bytes without control characters";
  }
  if (const std::string p = CheckOwner("owner", request->owner()); !p.empty()) {
    problems += (problems.empty() ? "" : "; ") + p;
  }
  if (request->after_size() > kMaxDependencies) {
    problems += std::string(problems.empty() ? "" : "; ") + "after: at most " +
                std::to_string(kMaxDependencies) + " jobs, got " +
                std::to_string(request->after_size());
  }
  if (!problems.empty()) return Invalid(problems);
  // Dependencies are existing jobs (so no cycle can form: each names an older job).
  std::vector<int64_t> after;
  for (int64_t dependency : request->after()) {
    if (std::find(after.begin(), after.end(), dependency) != after.end()) continue;
    if (dependency < 1 || !store_->Get(dependency).ok()) {
      return Invalid("after: job " + std::to_string(dependency) + " does not exist");
    }
    after.push_back(dependency);
  }
  const std::string source = given_name.empty() ? kDefaultSpecName : given_name;
  std::map<std::string, std::string> overrides(request->overrides().begin(),
                                               request->overrides().end());
  for (const auto& [key, value] : element) overrides[key] = value;  // the element's win
  auto text = ApplyOverrides(request->spec_yaml(), overrides);
  if (!text.ok()) {
    // ApplyOverrides names the spec kDefaultSpecName; the client told us its name.
    std::string message = text.status().message();
    if (message.rfind(kDefaultSpecName, 0) == 0) {
      message.replace(0, std::strlen(kDefaultSpecName), source);
    }
    return ToGrpc(Status(text.status().code(), message));
  }
  auto spec = ParseJobSpec(*text, source);
  if (!spec.ok()) return ToGrpc(spec.status());
  if (Status p = paths_.CheckSpec(*spec); !p.ok()) {
    // The user who submits is often not the one who started the coordinator: say what decides.
    return Invalid(source + ": " + p.message() +
                   "; the roots are set where the coordinator starts: `dtrain coordinator "
                   "--allowed-root DIR` (repeatable; without it, the coordinator's working and "
                   "state directories)");
  }
  NewJob job;
  job.name = spec->name;
  job.spec_yaml = *text;
  job.ranks = request->ranks() > 0 ? request->ranks() : spec->distributed.ranks;
  job.priority = request->priority();
  job.max_attempts =
      request->max_attempts() > 0 ? request->max_attempts() : spec->restart.max_attempts;
  job.submitted_ms = NowMs();
  job.held = request->hold();
  job.after = after;
  job.owner = request->owner();
  if (Status fit = supervisor_->CanEverFit(job.ranks); !fit.ok()) return ToGrpc(fit);
  *out = std::move(job);
  return grpc::Status::OK;
}

StatusOr<int64_t> CoordinatorService::StoreAndQueue(const NewJob& job) {
  auto id = store_->Insert(job);
  if (!id.ok()) return id.status();
  supervisor_->Enqueue({*id, job.ranks, job.priority, job.submitted_ms},
                       JobGate{job.held, job.after});
  return *id;
}

grpc::Status CoordinatorService::SubmitJob(grpc::ServerContext* context,
                                           const v1::SubmitJobRequest* request,
                                           v1::SubmitJobResponse* response) {
  if (grpc::Status a = auth_.Check(*context); !a.ok()) return a;
  NewJob job;
  if (grpc::Status s = PrepareJob(request, {}, &job); !s.ok()) return s;
  auto id = StoreAndQueue(job);
  if (!id.ok()) return ToGrpc(id.status());
  response->set_job_id(*id);
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::SubmitJobArray(grpc::ServerContext* context,
                                                const v1::SubmitJobArrayRequest* request,
                                                v1::SubmitJobArrayResponse* response) {
  if (grpc::Status a = auth_.Check(*context); !a.ok()) return a;
  if (request->elements_size() < 1 || request->elements_size() > kMaxArrayElements) {
    return Invalid("elements: expected 1 to " + std::to_string(kMaxArrayElements) + ", got " +
                   std::to_string(request->elements_size()));
  }
  std::optional<EarlyStoppingRule> early_stopping;
  if (request->has_early_stopping()) {
    const v1::EarlyStopping& given = request->early_stopping();
    EarlyStoppingRule rule;
    rule.metric = given.metric();
    rule.minimize = given.minimize();
    rule.grace_epochs = given.grace_epochs() == 0 ? 1 : given.grace_epochs();
    rule.reduction_factor =
        given.reduction_factor() == 0 ? kDefaultReductionFactor : given.reduction_factor();
    if (Status s = ValidateEarlyStopping(rule, "early_stopping"); !s.ok()) return ToGrpc(s);
    early_stopping = rule;
  }
  // Every element is checked before any is stored: a sweep is queued whole or not at all.
  std::vector<NewJob> jobs(static_cast<size_t>(request->elements_size()));
  for (int i = 0; i < request->elements_size(); ++i) {
    const auto& given = request->elements(i).overrides();
    const std::map<std::string, std::string> element(given.begin(), given.end());
    grpc::Status s = PrepareJob(&request->job(), element, &jobs[static_cast<size_t>(i)]);
    if (!s.ok()) {
      std::string which;
      for (const auto& [key, value] : element) {
        which += (which.empty() ? " (" : ", ") + key + "=" + value;
      }
      if (!which.empty()) which += ")";
      return grpc::Status(s.error_code(),
                          "elements[" + std::to_string(i) + "]" + which + ": " + s.error_message());
    }
  }
  int64_t array_id = 0;
  for (size_t i = 0; i < jobs.size(); ++i) {
    jobs[i].array_id = array_id;
    jobs[i].array_index = static_cast<int>(i);
    auto id = StoreAndQueue(jobs[i]);
    if (!id.ok()) {
      // A storage failure part-way: say what was queued, so the caller can cancel it.
      return ToGrpc(Status(id.status().code(), id.status().message() + " (elements[0.." +
                                                   std::to_string(i) + ") were queued as array " +
                                                   std::to_string(array_id) + ")"));
    }
    if (i == 0) {
      array_id = *id;
      // Stored before any trial can finish an epoch (the first has only just been queued).
      if (early_stopping) {
        Status s = store_->SetEarlyStopping(array_id, *early_stopping);
        if (!s.ok()) {
          return ToGrpc(Status(s.code(), s.message() + " (elements[0] was queued as array " +
                                             std::to_string(array_id) + ")"));
        }
      }
    }
    response->add_job_ids(*id);
  }
  response->set_array_id(array_id);
  return grpc::Status::OK;
}

void CoordinatorService::ToJob(const JobRecord& r, v1::Job* out, bool with_history) const {
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
  out->set_rank_signal(r.rank_signal);
  out->set_last_log_lines(r.last_log_lines);
  out->set_output_dir(r.output_dir);
  out->set_held(r.held);
  for (int64_t dependency : r.after) out->add_after(dependency);
  out->set_owner(r.owner);
  out->set_array_id(r.array_id);
  out->set_array_index(r.array_index);
  out->set_compacted_ms(r.compacted_ms);
  out->set_spec_yaml(r.spec_yaml);
  auto history =
      with_history
          ? store_->History(r.id)
          : StatusOr<std::vector<coordinator::Transition>>(std::vector<coordinator::Transition>());
  if (history.ok()) {
    for (const auto& t : *history) {
      v1::Transition* p = out->add_history();
      // The submission is stored PENDING -> PENDING; it comes from no state (issue 16 item 7).
      const bool submission =
          out->history_size() == 1 && t.from == JobState::kPending && t.to == JobState::kPending;
      p->set_from(submission ? v1::JOB_STATE_UNSPECIFIED : ToProto(t.from));
      p->set_to(ToProto(t.to));
      p->set_attempt(t.attempt);
      p->set_at_ms(t.at_ms);
      p->set_reason(t.reason);
    }
  }
  const std::map<std::string, double> metrics = supervisor_->Metrics(r.id);
  out->mutable_metrics()->insert(metrics.begin(), metrics.end());
}

void CoordinatorService::ToJobWithStanding(const JobRecord& record, v1::Job* out) const {
  ToJob(record, out);
  if (record.state == JobState::kPending) {
    AddStanding(supervisor_->QueueStandings({record.id}), out);
  }
}

grpc::Status CoordinatorService::GetJob(grpc::ServerContext* context,
                                        const v1::GetJobRequest* request, v1::Job* response) {
  if (grpc::Status a = auth_.Check(*context); !a.ok()) return a;
  if (grpc::Status v = CheckView(request->view()); !v.ok()) return v;
  auto record = store_->Get(request->job_id());
  if (!record.ok()) return ToGrpc(record.status());
  ToJobWithStanding(*record, response);
  ApplyView(request->view(), v1::JOB_VIEW_FULL, response);
  return grpc::Status::OK;
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
  if (request->page_size() < 0) {
    return Invalid("page_size: expected 0 (the default, " + std::to_string(kDefaultPageSize) +
                   ") to " + std::to_string(kMaxPageSize) + ", got " +
                   std::to_string(request->page_size()));
  }
  if (grpc::Status v = CheckView(request->view()); !v.ok()) return v;
  filter.limit =
      request->page_size() > 0 ? std::min(request->page_size(), kMaxPageSize) : kDefaultPageSize;
  if (request->order_by() == "id desc") {
    filter.newest_first = true;
  } else if (!request->order_by().empty() && request->order_by() != "id") {
    return Invalid("order_by: expected \"id\" or \"id desc\", got '" + request->order_by() + "'");
  }
  if (request->name().size() > kMaxNameFilterBytes) {
    return Invalid("name: at most " + std::to_string(kMaxNameFilterBytes) + " bytes");
  }
  filter.name_glob = request->name();
  if (const std::string p = CheckOwner("owner", request->owner()); !p.empty()) return Invalid(p);
  filter.owner = request->owner();
  if (request->array_id() < 0) return Invalid("array_id: must not be negative");
  filter.array_id = request->array_id();
  if (!request->page_token().empty()) {
    // Tokens are "<last id>" oldest first, "<last id>d" newest first.
    std::string token = request->page_token();
    const bool desc_token = !token.empty() && token.back() == 'd';
    if (desc_token) token.pop_back();
    int64_t last = 0;
    const auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), last);
    const bool number = !token.empty() && token[0] != '-' && ec == std::errc() &&
                        end == token.data() + token.size();
    if (!number || desc_token != filter.newest_first) {
      return Invalid("page_token '" + request->page_token() + "' is not one we issued" +
                     (number ? " for this order_by" : ""));
    }
    filter.after_id = last;
  }
  auto jobs = store_->List(filter);
  if (!jobs.ok()) return ToGrpc(jobs.status());
  std::vector<int64_t> queued;
  for (const JobRecord& r : *jobs) {
    if (r.state == JobState::kPending) queued.push_back(r.id);
  }
  const std::map<int64_t, JobSupervisor::QueueStanding> standings =
      supervisor_->QueueStandings(queued);
  for (const JobRecord& r : *jobs) {
    v1::Job* job = response->add_jobs();
    ToJob(r, job, /*with_history=*/request->view() == v1::JOB_VIEW_FULL);
    if (r.state == JobState::kPending) AddStanding(standings, job);
    ApplyView(request->view(), v1::JOB_VIEW_UNSPECIFIED, job);
  }
  if (static_cast<int>(jobs->size()) == filter.limit) {
    response->set_next_page_token(std::to_string(jobs->back().id) +
                                  (filter.newest_first ? "d" : ""));
  }
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::CancelJob(grpc::ServerContext* context,
                                           const v1::CancelJobRequest* request, v1::Job* response) {
  if (grpc::Status a = auth_.Check(*context); !a.ok()) return a;
  auto cancelled = supervisor_->Cancel(request->job_id());
  if (!cancelled.ok()) return ToGrpc(cancelled.status());
  ToJob(*cancelled, response);
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::WatchJob(grpc::ServerContext* context,
                                          const v1::WatchJobRequest* request,
                                          grpc::ServerWriter<v1::JobEvent>* writer) {
  if (grpc::Status a = auth_.Check(*context); !a.ok()) return a;
  const int64_t id = request->job_id();
  auto record = store_->Get(id);
  if (!record.ok()) return ToGrpc(record.status());
  if (request->tail() < 0 || request->since_ms() < 0 || request->after_seq() < 0) {
    return Invalid("after_seq, tail, since_ms: must not be negative");
  }
  int64_t after = request->after_seq();
  // tail and since only move the start later, never before after_seq (a resumed stream).
  if (request->since_ms() > 0) {
    auto seq = store_->SeqBeforeTime(id, request->since_ms());
    if (!seq.ok()) return ToGrpc(seq.status());
    after = std::max(after, *seq);
  }
  if (request->tail() > 0) {
    auto seq = store_->SeqBeforeLast(id, request->tail());
    if (!seq.ok()) return ToGrpc(seq.status());
    after = std::max(after, *seq);
  }
  for (;;) {
    if (context->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "client left");
    // Read the state before the events, so a terminal state implies all its events are seen.
    auto now = store_->Get(id);
    if (!now.ok()) return ToGrpc(now.status());
    const bool terminal = IsTerminal(now->state);
    for (;;) {
      auto events = store_->EventsAfter(id, after, kWatchBatch);
      if (!events.ok()) return ToGrpc(events.status());
      for (const JobEvent& e : *events) {
        v1::JobEvent out;
        out.set_job_id(id);
        out.set_seq(e.seq);
        out.set_at_ms(e.at_ms);
        out.set_kind(e.kind);
        out.set_payload(e.payload);
        SetTyped(e, &out);
        if (!writer->Write(out)) return grpc::Status(grpc::StatusCode::CANCELLED, "client left");
        after = e.seq;
      }
      if (events->size() < static_cast<size_t>(kWatchBatch)) break;
    }
    if (!request->follow() || terminal) return grpc::Status::OK;
    std::this_thread::sleep_for(options_.watch_poll_interval);
  }
}

grpc::Status CoordinatorService::GetCluster(grpc::ServerContext* context,
                                            const v1::GetClusterRequest* request,
                                            v1::Cluster* response) {
  if (grpc::Status a = auth_.Check(*context); !a.ok()) return a;
  const ClusterView cluster = supervisor_->Cluster();
  for (const ClusterView::HostUsage& host : cluster.hosts) {
    v1::HostSlots* h = response->add_hosts();
    h->set_name(host.name);
    h->set_total(host.total);
    h->set_free(host.free);
    h->set_used(host.total - host.free);
  }
  response->set_total_slots(cluster.total_slots);
  response->set_used_slots(cluster.used_slots);
  response->set_free_slots(cluster.free_slots);
  response->set_queue_length(cluster.queue_length);
  response->set_running_jobs(cluster.running_jobs);
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::HoldJob(grpc::ServerContext* context,
                                         const v1::HoldJobRequest* request, v1::Job* response) {
  if (grpc::Status a = auth_.Check(*context); !a.ok()) return a;
  auto job = supervisor_->SetHeld(request->job_id(), true);
  if (!job.ok()) return ToGrpc(job.status());
  ToJobWithStanding(*job, response);
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::ReleaseJob(grpc::ServerContext* context,
                                            const v1::ReleaseJobRequest* request,
                                            v1::Job* response) {
  if (grpc::Status a = auth_.Check(*context); !a.ok()) return a;
  auto job = supervisor_->SetHeld(request->job_id(), false);
  if (!job.ok()) return ToGrpc(job.status());
  ToJobWithStanding(*job, response);
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::GetRankLog(grpc::ServerContext* context,
                                            const v1::GetRankLogRequest* request,
                                            v1::GetRankLogResponse* response) {
  if (grpc::Status a = auth_.Check(*context); !a.ok()) return a;
  if (request->offset() < 0) {
    return Invalid("offset: expected >= 0, got " + std::to_string(request->offset()));
  }
  if (const std::string p =
          CheckRange("max_bytes", request->max_bytes(), 0, kMaxRankLogBytes, " (0: 64 KiB)");
      !p.empty()) {
    return Invalid(p);
  }
  RankStream stream = RankStream::kStdout;
  switch (request->stream()) {
    case v1::RANK_LOG_STREAM_UNSPECIFIED:
    case v1::RANK_LOG_STREAM_STDOUT:
      break;
    case v1::RANK_LOG_STREAM_STDERR:
      stream = RankStream::kStderr;
      break;
    default:
      return Invalid("stream: expected RANK_LOG_STREAM_STDOUT or RANK_LOG_STREAM_STDERR, got " +
                     std::to_string(static_cast<int>(request->stream())));
  }
  auto job = store_->Get(request->job_id());
  if (!job.ok()) return ToGrpc(job.status());
  if (const std::string p = CheckRange(
          "rank", request->rank(), 0, job->ranks - 1,
          (" (job " + std::to_string(job->id) + " has " + std::to_string(job->ranks) + " ranks)")
              .c_str());
      !p.empty()) {
    return Invalid(p);
  }
  const size_t max_bytes =
      request->max_bytes() == 0 ? kDefaultRankLogBytes : static_cast<size_t>(request->max_bytes());
  auto chunk =
      supervisor_->ReadRankLog(*job, request->rank(), stream, request->offset(), max_bytes);
  if (!chunk.ok()) return ToGrpc(chunk.status());
  response->set_data(std::move(chunk->data));
  response->set_next_offset(chunk->next_offset);
  response->set_attempt(job->attempt);
  response->set_complete(IsTerminal(job->state) && response->data().size() < max_bytes);
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::SetJobPriority(grpc::ServerContext* context,
                                                const v1::SetJobPriorityRequest* request,
                                                v1::Job* response) {
  if (grpc::Status a = auth_.Check(*context); !a.ok()) return a;
  if (const std::string p =
          CheckRange("priority", request->priority(), -kMaxPriority, kMaxPriority, "");
      !p.empty()) {
    return Invalid(p);
  }
  auto job = supervisor_->SetPriority(request->job_id(), request->priority());
  if (!job.ok()) return ToGrpc(job.status());
  ToJobWithStanding(*job, response);
  return grpc::Status::OK;
}

}  // namespace dtrain::coordinator
