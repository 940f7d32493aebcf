#include "runtime/cli/client_commands.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <deque>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <thread>
#include <utility>

#include "runtime/cli/output.h"
#include "runtime/cli/sweep.h"
#include "runtime/common/utf8.h"
#include "runtime/rpc/auth.h"
#include "runtime/spec/overrides.h"

namespace dtrain::cli {
namespace {

// Channel reconnect backoff: gRPC's defaults (1 s growing to 120 s) would outlast our budget
// for riding out a coordinator restart.
constexpr int kChannelMinReconnectMs = 250;
constexpr int kChannelMaxReconnectMs = 2000;
// A failing call to an unreachable coordinator fails at once; one open this long had connected.
constexpr std::chrono::seconds kStreamAliveAfter{2};

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Prints "dtrain: CODE: message (address A)" and a hint where one helps; returns the exit code.
int ReportRpcError(const grpc::Status& status, const CommandEnv& env) {
  *env.err << "dtrain: " << FormatRpcError(status, env.settings.address) << "\n";
  if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED &&
      env.settings.token_source == TokenSource::kNone) {
    *env.err << "dtrain: no token was given; use --token-file, DTRAIN_TOKEN_FILE or token_file "
                "in the config file\n";
  } else if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    *env.err << "dtrain: is the coordinator running there? (--address, DTRAIN_ADDRESS or "
                "address in the config file)\n";
  }
  return ExitCodeForRpcError(status.error_code());
}

int Usage(const CommandEnv& env, const std::string& message) {
  *env.err << "dtrain: " << message << "\n";
  return kExitUsage;
}

void PrintJson(const CommandEnv& env, const nlohmann::ordered_json& value) {
  *env.out << value.dump(2) << "\n";
}

bool Retriable(grpc::StatusCode code) {
  return code == grpc::StatusCode::UNAVAILABLE || code == grpc::StatusCode::CANCELLED ||
         code == grpc::StatusCode::ABORTED;
}

StatusOr<std::string> ReadFile(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return InvalidArgument("cannot read job spec '" + path + "': it is a directory");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot read job spec '" + path + "': " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return DataLoss("cannot read job spec '" + path + "': " + std::strerror(errno));
  return text.str();
}

// Prints the events of a followed job for people: state changes, the live progress line, epoch
// summaries and, when asked, log lines.
class FollowPrinter {
 public:
  // `waiting` says where a queued job stands ("#2: waiting for 2 slots ..."), "" if unknown.
  FollowPrinter(const CommandEnv& env, int64_t job_id, bool show_logs,
                std::function<std::string()> waiting)
      : env_(env),
        job_id_(job_id),
        show_logs_(show_logs),
        waiting_(std::move(waiting)),
        live_(env.out_is_terminal) {}

  void operator()(const v1::JobEvent& event) {
    if (event.kind() == "state") {
      std::string line = "job " + std::to_string(job_id_) + ": " + event.payload();
      if (event.payload() == "PENDING") {
        const std::string where = waiting_();
        if (!where.empty()) line += " (" + where + ")";
      }
      Replace(line);
    } else if (event.kind() == "progress") {
      auto progress = ParseProgress(event.payload());
      if (!progress.ok()) return;  // not ours to judge; `dtrain logs` shows the raw line
      // Every rank reports started/finished; one is enough.
      if ((progress->event() == "started" || progress->event() == "finished") &&
          progress->rank() != 0) {
        return;
      }
      const std::string& kind = progress->event();
      if (IsLiveProgress(*progress)) {
        *env_.out << live_.Show(FormatProgress(*progress)) << std::flush;
      } else if (kind == "epoch" || kind == "finished" || kind == "failed") {
        Replace(FormatProgress(*progress));  // the step line above is over
      } else {
        Print(FormatProgress(*progress));
      }
    } else if (event.kind() == "log" && show_logs_) {
      Print(event.payload());
    }
  }

  void Finish() { *env_.out << live_.Finish() << std::flush; }

 private:
  void Print(const std::string& line) { *env_.out << live_.Print(line) << std::flush; }
  void Replace(const std::string& line) { *env_.out << live_.Replace(line) << std::flush; }

  const CommandEnv& env_;
  int64_t job_id_;
  bool show_logs_;
  std::function<std::string()> waiting_;
  LiveLine live_;
};

// While a job is followed, Ctrl-C says that the job goes on (and how to stop or follow it
// again) instead of leaving the user to guess. The message is built beforehand: a signal handler
// may only write(2) it.
class InterruptNotice {
 public:
  explicit InterruptNotice(int64_t job_id) {
    const std::string id = std::to_string(job_id);
    const std::string text = "\ndtrain: stopped following job " + id +
                             "; it keeps running (dtrain logs " + id + " -f follows it again, " +
                             "dtrain cancel " + id + " stops it)\n";
    std::snprintf(message_, sizeof(message_), "%s", text.c_str());
    struct sigaction action {};
    action.sa_handler = &InterruptNotice::OnInterrupt;
    sigemptyset(&action.sa_mask);
    installed_ = ::sigaction(SIGINT, &action, &previous_) == 0;
  }
  ~InterruptNotice() {
    if (installed_) ::sigaction(SIGINT, &previous_, nullptr);
  }
  InterruptNotice(const InterruptNotice&) = delete;
  InterruptNotice& operator=(const InterruptNotice&) = delete;

 private:
  static void OnInterrupt(int) {
    const ssize_t ignored = ::write(STDERR_FILENO, message_, std::strlen(message_));
    (void)ignored;
    ::_exit(kExitInterrupted);
  }
  static inline char message_[256] = {};
  struct sigaction previous_ {};
  bool installed_ = false;
};

// Prints how a followed job ended and returns its exit code.
int ReportOutcome(const v1::Job& job, const CommandEnv& env) {
  if (env.settings.json) {
    PrintJson(env, {{"job_id", job.job_id()}, {"job", JobToJson(job)}});
    return ExitCodeForJobState(job.state());
  }
  std::string line = "job " + std::to_string(job.job_id()) + " " + StateName(job.state());
  if (job.started_ms() > 0 && job.finished_ms() >= job.started_ms()) {
    line += " after " + FormatDuration(job.finished_ms() - job.started_ms());
  }
  if (job.max_attempts() > 1) line += " (attempt " + FormatAttempt(job) + ")";
  if (!job.reason().empty() && job.state() != v1::SUCCEEDED) line += ": " + job.reason();
  if (job.state() == v1::SUCCEEDED) {
    // What a user waits for: the test figures, and where the model is.
    std::vector<std::string> tests;
    std::vector<std::pair<std::string, double>> metrics(job.metrics().begin(), job.metrics().end());
    std::sort(metrics.begin(), metrics.end());
    for (const auto& [name, value] : metrics) {
      if (name.rfind("test.", 0) != 0) continue;
      char text[64];
      std::snprintf(text, sizeof(text), "%.6g", value);
      tests.push_back(name + " " + text);
    }
    for (size_t i = 0; i < tests.size(); ++i) line += (i == 0 ? ": " : ", ") + tests[i];
  }
  *env.out << line << "\n";
  if (!job.output_dir().empty() && job.state() != v1::CANCELLED) {
    *env.out << "output: " << job.output_dir() << "\n";
  }
  if (job.state() == v1::FAILED) {
    std::string failure = RenderFailure(job);
    // The reason usually is the failure's first line already.
    if (failure.rfind(job.reason() + "\n", 0) == 0) failure.erase(0, job.reason().size() + 1);
    *env.out << failure;
  }
  return ExitCodeForJobState(job.state());
}

int FollowJob(int64_t job_id, bool show_logs, v1::Coordinator::StubInterface* stub,
              const CommandEnv& env) {
  InterruptNotice notice(job_id);
  auto waiting = [&]() -> std::string {
    v1::GetJobRequest request;
    request.set_job_id(job_id);
    request.set_view(v1::JOB_VIEW_BASIC);
    v1::Job job;
    auto context = NewCallContext(env, /*unary=*/true);
    if (!stub->GetJob(context.get(), request, &job).ok() || job.state() != v1::PENDING ||
        job.waiting_reason().empty()) {
      return "";
    }
    return ShownReason(job);
  };
  FollowPrinter printer(env, job_id, show_logs, waiting);
  std::function<void(const v1::JobEvent&)> on_event = [](const v1::JobEvent&) {};
  if (!env.settings.json) on_event = std::ref(printer);
  int64_t last_seq = 0;
  v1::Job final_job;
  const grpc::Status status =
      WatchEvents(stub, env, job_id, /*follow=*/true,
                  /*retry_from_start=*/true, &last_seq, on_event, &final_job);
  printer.Finish();
  if (!status.ok()) return ReportRpcError(status, env);
  return ReportOutcome(final_job, env);
}

}  // namespace

// ---------------------------------------------------------------- helpers

std::unique_ptr<grpc::ClientContext> NewCallContext(const CommandEnv& env, bool unary) {
  auto context = std::make_unique<grpc::ClientContext>();
  if (!env.token.empty()) rpc::AddToken(context.get(), env.token);
  if (unary) {
    context->set_deadline(std::chrono::system_clock::now() +
                          std::chrono::duration_cast<std::chrono::system_clock::duration>(
                              std::chrono::duration<double>(env.settings.timeout_s)));
  }
  return context;
}

StatusOr<Channel> OpenChannel(const ClientSettings& settings, const ConfigFile& config,
                              int max_receive_bytes) {
  Channel connection;
  if (!settings.token_file.empty()) {
    auto token = rpc::LoadToken(settings.token_file);
    if (!token.ok()) {
      return token.status().WithContext("token from " + DescribeTokenSource(settings, config));
    }
    connection.token = std::move(token).value();
  } else {
    connection.token = settings.token;
  }
  rpc::ClientSecurity security;
  security.token = connection.token;
  security.tls_ca_file = settings.tls_ca;
  auto credentials = rpc::MakeChannelCredentials(security);
  if (!credentials.ok()) return credentials.status();

  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, kChannelMinReconnectMs);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, kChannelMinReconnectMs);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, kChannelMaxReconnectMs);
  if (max_receive_bytes > 0) args.SetMaxReceiveMessageSize(max_receive_bytes);
  connection.channel = grpc::CreateCustomChannel(settings.address, *credentials, args);
  return connection;
}

StatusOr<Connection> Connect(const ClientSettings& settings, const ConfigFile& config) {
  DTRAIN_ASSIGN_OR_RETURN(Channel channel, OpenChannel(settings, config));
  Connection connection;
  connection.channel = std::move(channel.channel);
  connection.token = std::move(channel.token);
  connection.stub = v1::Coordinator::NewStub(connection.channel);
  return connection;
}

int ExitCodeForRpcError(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return kExitOk;
    case grpc::StatusCode::NOT_FOUND:
      return kExitNotFound;
    case grpc::StatusCode::INVALID_ARGUMENT:
      return kExitUsage;
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::UNIMPLEMENTED:  // this coordinator cannot do it (its backend)
      return kExitRefused;
    default:
      return kExitServer;
  }
}

int ExitCodeForJobState(v1::JobState state) {
  switch (state) {
    case v1::SUCCEEDED:
      return kExitOk;
    case v1::FAILED:
      return kExitJobFailed;
    case v1::CANCELLED:
      return kExitJobCancelled;
    default:
      return kExitServer;
  }
}

StatusOr<std::map<std::string, std::string>> ParseOverrides(const std::vector<std::string>& sets) {
  for (const std::string& set : sets) {
    // Overrides travel in protocol buffer strings, which must be UTF-8.
    if (const std::string bad = DescribeInvalidUtf8(set); !bad.empty()) {
      return InvalidArgument("--set: " + bad);
    }
  }
  return ParseOverrideArguments(sets);
}

grpc::Status WatchEvents(v1::Coordinator::StubInterface* stub, const CommandEnv& env,
                         int64_t job_id, bool follow, bool retry_from_start, int64_t* last_seq,
                         const std::function<void(const v1::JobEvent&)>& on_event,
                         v1::Job* final_job, WatchStart start) {
  bool connected_once = retry_from_start;
  bool broken = false;  // since broken_since, no event arrived
  std::chrono::steady_clock::time_point broken_since{};
  std::chrono::milliseconds backoff = kInitialReconnectBackoff;

  // Decides what to do with a failed stream or call: wait and try again, or give up.
  auto retry = [&](const grpc::Status& status) {
    if (!connected_once || !Retriable(status.error_code())) return false;
    const auto now = std::chrono::steady_clock::now();
    if (!broken) {
      broken = true;
      broken_since = now;
      backoff = kInitialReconnectBackoff;
      *env.err << "dtrain: lost the stream of job " << job_id << " ("
               << FormatRpcError(status, env.settings.address) << "); reconnecting\n";
    }
    if (now - broken_since + backoff > env.reconnect_budget) return false;
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, kMaxReconnectBackoff);
    return true;
  };

  for (;;) {
    v1::WatchJobRequest request;
    request.set_job_id(job_id);
    request.set_after_seq(*last_seq);
    request.set_follow(follow);
    // Only the first call starts late; a reconnect resumes after the last event seen.
    if (*last_seq == 0) {
      request.set_tail(start.tail);
      request.set_since_ms(start.since_ms);
    }
    auto context = NewCallContext(env, /*unary=*/false);
    const auto attempt_start = std::chrono::steady_clock::now();
    auto reader = stub->WatchJob(context.get(), request);
    v1::JobEvent event;
    while (reader->Read(&event)) {
      if (broken) {
        *env.err << "dtrain: reconnected\n";
        broken = false;
      }
      connected_once = true;
      if (event.seq() <= *last_seq) continue;  // already seen before a reconnect
      *last_seq = event.seq();
      on_event(event);
    }
    grpc::Status status = reader->Finish();
    if (status.ok()) {
      connected_once = true;
      if (!follow) return status;
      // The coordinator ends a followed stream once the job is terminal; check, since a
      // coordinator that shuts down may end it too.
      v1::GetJobRequest get;
      get.set_job_id(job_id);
      v1::Job job;
      auto get_context = NewCallContext(env, /*unary=*/true);
      status = stub->GetJob(get_context.get(), get, &job);
      if (status.ok() && IsTerminal(job.state())) {
        if (broken) *env.err << "dtrain: reconnected\n";
        if (final_job != nullptr) *final_job = std::move(job);
        return status;
      }
      if (status.ok()) {
        status = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                              "the event stream ended before the job finished");
      }
    }
    // A stream that stayed open a while was connected even if no event came: a later break is
    // a new one with a fresh budget.
    if (broken && std::chrono::steady_clock::now() - attempt_start >= kStreamAliveAfter) {
      broken = false;
    }
    if (!retry(status)) {
      if (broken && Retriable(status.error_code())) {
        return grpc::Status(status.error_code(),
                            status.error_message() + " (gave up reconnecting after " +
                                FormatDuration(env.reconnect_budget.count()) + ")");
      }
      return status;
    }
  }
}

// ---------------------------------------------------------------- commands

namespace {

// `submit --sweep`: the spec and settings of `job` with each trial's overrides over them.
int SubmitSweep(const SubmitOptions& options, v1::SubmitJobRequest job,
                v1::Coordinator::StubInterface* stub, const CommandEnv& env) {
  if (options.follow) {
    return Usage(env,
                 "--follow follows one job and --sweep queues many: follow the sweep with "
                 "dtrain list --array ID");
  }
  auto text = ReadFile(options.sweep);
  if (!text.ok()) return Usage(env, text.status().message());
  auto sweep = ParseSweep(*text, options.sweep);
  if (!sweep.ok()) return Usage(env, sweep.status().message());
  auto trials = ExpandSweep(*sweep);
  if (!trials.ok()) return Usage(env, options.sweep + ": " + trials.status().message());
  v1::SubmitJobArrayRequest request;
  *request.mutable_job() = std::move(job);
  for (const auto& trial : *trials) {
    request.add_elements()->mutable_overrides()->insert(trial.begin(), trial.end());
  }
  if (sweep->early_stopping) {
    v1::EarlyStopping* rule = request.mutable_early_stopping();
    rule->set_metric(sweep->early_stopping->metric);
    rule->set_minimize(sweep->early_stopping->minimize);
    rule->set_grace_epochs(sweep->early_stopping->grace_epochs);
    rule->set_reduction_factor(sweep->early_stopping->reduction_factor);
  }
  v1::SubmitJobArrayResponse response;
  auto context = NewCallContext(env, /*unary=*/true);
  const grpc::Status status = stub->SubmitJobArray(context.get(), request, &response);
  if (!status.ok()) {
    if (status.error_code() == grpc::StatusCode::INVALID_ARGUMENT ||
        status.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
      *env.err << "dtrain: " << options.job_file << " with " << options.sweep << " was rejected:\n"
               << status.error_message() << "\n";
      return kExitUsage;
    }
    return ReportRpcError(status, env);
  }
  if (env.settings.json) {
    PrintJson(env, {{"array_id", response.array_id()},
                    {"job_ids",
                     std::vector<int64_t>(response.job_ids().begin(), response.job_ids().end())}});
    return kExitOk;
  }
  *env.out << "submitted array " << response.array_id() << ": " << response.job_ids_size()
           << (response.job_ids_size() == 1 ? " job" : " jobs") << "\n";
  for (int i = 0; i < response.job_ids_size() && i < static_cast<int>(trials->size()); ++i) {
    *env.out << "  job " << response.job_ids(i) << " [" << i << "]";
    for (const auto& [key, value] : (*trials)[static_cast<size_t>(i)]) {
      *env.out << " " << key << "=" << value;
    }
    *env.out << "\n";
  }
  return kExitOk;
}

// "name" or "name:max" -> (name, higher first); "name:min" -> (name, lower first).
std::optional<std::pair<std::string, bool>> ParseRankBy(const std::string& text) {
  std::string name = text;
  bool higher_first = true;
  const size_t colon = text.rfind(':');
  if (colon != std::string::npos) {
    const std::string direction = text.substr(colon + 1);
    if (direction != "min" && direction != "max") return std::nullopt;
    higher_first = direction == "max";
    name = text.substr(0, colon);
  }
  if (name.empty()) return std::nullopt;
  return std::make_pair(name, higher_first);
}

}  // namespace

int RunSubmit(const SubmitOptions& options, v1::Coordinator::StubInterface* stub,
              const CommandEnv& env) {
  auto spec = ReadFile(options.job_file);
  if (!spec.ok()) return Usage(env, spec.status().message());
  // Refused here, naming the byte: gRPC could not even send it (INTERNAL, no message).
  if (const std::string bad = DescribeInvalidUtf8(*spec); !bad.empty()) {
    return Usage(env, "job spec '" + options.job_file + "': " + bad);
  }
  auto overrides = ParseOverrides(options.sets);
  if (!overrides.ok()) return Usage(env, overrides.status().message());

  v1::SubmitJobRequest request;
  request.set_spec_yaml(std::move(spec).value());
  request.mutable_overrides()->insert(overrides->begin(), overrides->end());
  request.set_ranks(options.ranks);
  request.set_priority(options.priority);
  request.set_max_attempts(options.max_attempts);
  // Errors then name the user's file ("jobs/x.yaml:4:17: ..."); a name that is not valid UTF-8
  // could not travel, and the coordinator falls back to "<submitted spec>".
  if (DescribeInvalidUtf8(options.job_file).empty()) request.set_spec_name(options.job_file);
  for (const std::string& text : options.after) {
    if (const std::string bad = CheckJobId(text); !bad.empty()) return Usage(env, "--after " + bad);
    request.add_after(std::stoll(text));
  }
  request.set_hold(options.hold);
  request.set_owner(options.owner);
  if (!options.sweep.empty()) return SubmitSweep(options, std::move(request), stub, env);
  v1::SubmitJobResponse response;
  auto context = NewCallContext(env, /*unary=*/true);
  const grpc::Status status = stub->SubmitJob(context.get(), request, &response);
  if (!status.ok()) {
    if (status.error_code() == grpc::StatusCode::INVALID_ARGUMENT ||
        status.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
      // An invalid spec, or one that can never fit the cluster. The coordinator names problems
      // "<file>:line:col: ...".
      *env.err << "dtrain: " << options.job_file << " was rejected:\n"
               << status.error_message() << "\n";
      return kExitUsage;
    }
    return ReportRpcError(status, env);
  }
  const int64_t id = response.job_id();
  if (!options.follow) {
    if (env.settings.json) {
      PrintJson(env, {{"job_id", id}});
    } else {
      *env.out << "submitted job " << id << "\n";
    }
    return kExitOk;
  }
  if (!env.settings.json) *env.out << "submitted job " << id << "\n" << std::flush;
  return FollowJob(id, options.logs, stub, env);
}

int RunStatus(std::optional<int64_t> job_id, v1::Coordinator::StubInterface* stub,
              const CommandEnv& env) {
  if (!job_id) return RunList(ListOptions{}, stub, env);
  v1::GetJobRequest request;
  request.set_job_id(*job_id);
  v1::Job job;
  auto context = NewCallContext(env, /*unary=*/true);
  const grpc::Status status = stub->GetJob(context.get(), request, &job);
  if (!status.ok()) return ReportRpcError(status, env);
  if (env.settings.json) {
    PrintJson(env, JobToJson(job));
  } else {
    *env.out << RenderJobDetail(job, NowMs());
  }
  return kExitOk;
}

int RunList(const ListOptions& options, v1::Coordinator::StubInterface* stub,
            const CommandEnv& env) {
  v1::JobState state = v1::JOB_STATE_UNSPECIFIED;
  if (!options.state.empty()) {
    auto parsed = ParseJobState(options.state);
    if (!parsed) {
      return Usage(env, "--state '" + options.state +
                            "': expected pending, running, succeeded, failed or cancelled");
    }
    state = *parsed;
  }
  if (options.limit < 0) return Usage(env, "--limit must be >= 0 (0 = no limit)");
  const size_t limit = static_cast<size_t>(options.limit);
  if (std::find(std::begin(kListSortKeys), std::end(kListSortKeys), options.sort) ==
      std::end(kListSortKeys)) {
    return Usage(env,
                 "--sort '" + options.sort + "': expected newest, oldest, priority, name or state");
  }
  std::optional<std::pair<std::string, bool>> rank_by;
  if (!options.rank_by.empty()) {
    rank_by = ParseRankBy(options.rank_by);
    if (!rank_by) {
      return Usage(env, "--rank-by '" + options.rank_by +
                            "': expected a metric name, optionally with :min or :max "
                            "(test.accuracy, loss:min)");
    }
  }

  std::vector<v1::Job> jobs;
  std::string page_token;
  bool more = false;
  for (;;) {
    v1::ListJobsRequest request;
    request.set_state(state);
    request.set_view(v1::JOB_VIEW_BASIC);  // a table shows no spec, history or log lines
    request.set_order_by(options.sort == "oldest" ? "id" : "id desc");
    request.set_name(options.name);
    request.set_owner(options.owner);
    request.set_array_id(options.array_id);
    const size_t wanted = limit == 0 ? kMaxListPageSize : limit - jobs.size();
    request.set_page_size(static_cast<int>(std::min<size_t>(wanted, kMaxListPageSize)));
    request.set_page_token(page_token);
    v1::ListJobsResponse response;
    auto context = NewCallContext(env, /*unary=*/true);
    const grpc::Status status = stub->ListJobs(context.get(), request, &response);
    if (!status.ok()) return ReportRpcError(status, env);
    for (v1::Job& job : *response.mutable_jobs()) jobs.push_back(std::move(job));
    // A token that does not move would page forever.
    if (response.next_page_token().empty() || response.next_page_token() == page_token) break;
    page_token = response.next_page_token();
    if (limit != 0 && jobs.size() >= limit) {
      more = true;
      break;
    }
  }
  if (limit != 0 && jobs.size() > limit) {
    jobs.resize(limit);
    more = true;
  }
  // Stable: within a key, the newest first as fetched.
  if (options.sort == "priority") {
    std::stable_sort(jobs.begin(), jobs.end(), [](const v1::Job& a, const v1::Job& b) {
      return a.priority() > b.priority();
    });
  } else if (options.sort == "name") {
    std::stable_sort(jobs.begin(), jobs.end(),
                     [](const v1::Job& a, const v1::Job& b) { return a.name() < b.name(); });
  } else if (options.sort == "state") {
    std::stable_sort(jobs.begin(), jobs.end(),
                     [](const v1::Job& a, const v1::Job& b) { return a.state() < b.state(); });
  }
  if (rank_by) {
    const auto& [metric, higher_first] = *rank_by;
    std::stable_sort(jobs.begin(), jobs.end(), [&](const v1::Job& a, const v1::Job& b) {
      const auto ia = a.metrics().find(metric);
      const auto ib = b.metrics().find(metric);
      if (ia == a.metrics().end() || ib == b.metrics().end()) {
        return ia != a.metrics().end() && ib == b.metrics().end();  // those with it first
      }
      return higher_first ? ia->second > ib->second : ia->second < ib->second;
    });
  }

  if (env.settings.json) {
    nlohmann::ordered_json array = nlohmann::ordered_json::array();
    for (const v1::Job& job : jobs) array.push_back(JobToJson(job));
    PrintJson(env, array);
  } else {
    *env.out << RenderJobTable(jobs, NowMs(), rank_by ? rank_by->first : "");
    if (more) {
      *env.err << "(showing the " << (options.sort == "oldest" ? "oldest " : "newest ") << limit
               << " jobs; --limit 0 shows all)\n";
    }
  }
  return kExitOk;
}

namespace {

// `dtrain logs ID --rank N`: reads GetRankLog pages from the start, keeps the last `tail` lines
// when asked, and with follow keeps reading until the job has ended and all was read.
int RunRankLogs(const LogsOptions& options, v1::Coordinator::StubInterface* stub,
                const CommandEnv& env) {
  if (!options.since.empty()) {
    return Usage(env, "--since does not apply to --rank: a rank's own output carries no times");
  }
  const bool json = env.settings.json;
  const char* stream_name = options.stderr_stream ? "stderr" : "stdout";
  v1::GetRankLogRequest request;
  request.set_job_id(options.job_id);
  request.set_rank(options.rank);
  request.set_stream(options.stderr_stream ? v1::RANK_LOG_STREAM_STDERR
                                           : v1::RANK_LOG_STREAM_STDOUT);
  // Whole lines go out as they complete; --tail holds them back until the first catch-up.
  std::string partial;
  std::deque<std::string> held;
  bool holding = options.tail > 0;
  nlohmann::ordered_json lines = nlohmann::ordered_json::array();
  auto emit = [&](const std::string& line) {
    if (holding) {
      held.push_back(line);
      if (static_cast<int64_t>(held.size()) > options.tail) held.pop_front();
    } else if (json && options.follow) {
      *env.out << nlohmann::ordered_json{{"rank", options.rank},
                                         {"stream", stream_name},
                                         {"line", line}}
                      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
               << "\n"
               << std::flush;
    } else if (json) {
      lines.push_back(line);
    } else {
      *env.out << line << "\n";
    }
  };
  int attempt = 0;
  for (;;) {
    v1::GetRankLogResponse response;
    auto context = NewCallContext(env, /*unary=*/true);
    const grpc::Status status = stub->GetRankLog(context.get(), request, &response);
    if (!status.ok()) return ReportRpcError(status, env);
    attempt = response.attempt();
    partial += response.data();
    size_t start = 0;
    for (size_t end; (end = partial.find('\n', start)) != std::string::npos; start = end + 1) {
      emit(partial.substr(start, end - start));
    }
    partial.erase(0, start);
    request.set_offset(response.next_offset());
    const bool caught_up = response.data().empty() || response.complete();
    const bool done = response.complete() || (caught_up && !options.follow);
    if (done && !partial.empty()) {
      emit(partial);  // a last line without its newline
      partial.clear();
    }
    if (caught_up && holding) {
      holding = false;
      std::deque<std::string> shown;
      shown.swap(held);
      for (const std::string& line : shown) emit(line);
    }
    if (done) break;
    if (response.data().empty()) {
      *env.out << std::flush;
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  }
  if (json && !options.follow) {
    // A rank may print bytes that are not UTF-8: JSON shows them as U+FFFD.
    *env.out << nlohmann::ordered_json{{"job_id", options.job_id},
                                       {"rank", options.rank},
                                       {"stream", stream_name},
                                       {"attempt", attempt},
                                       {"lines", lines}}
                    .dump(2, ' ', false, nlohmann::json::error_handler_t::replace)
             << "\n";
  }
  *env.out << std::flush;
  return kExitOk;
}

}  // namespace

int RunLogs(const LogsOptions& options, v1::Coordinator::StubInterface* stub,
            const CommandEnv& env) {
  const bool json = env.settings.json;
  if (options.tail < 0) return Usage(env, "--tail must be >= 0");
  if (options.rank >= 0) return RunRankLogs(options, stub, env);
  int64_t since_ms = 0;
  if (!options.since.empty()) {
    auto since = ParseSince(options.since, NowMs());
    if (!since.ok()) return Usage(env, since.status().message());
    since_ms = *since;
  }
  // --json: one array at the end; with -f, one JSON object per line as events arrive.
  nlohmann::ordered_json collected = nlohmann::ordered_json::array();
  auto on_event = [&](const v1::JobEvent& event) {
    if (json) {
      if (options.follow) {
        *env.out << EventToJson(event).dump() << "\n" << std::flush;
      } else {
        collected.push_back(EventToJson(event));
      }
      return;
    }
    if (event.kind() == "log") {
      *env.out << event.payload() << "\n";
    } else if (event.kind() == "progress") {
      auto progress = ParseProgress(event.payload());
      if (!progress.ok()) {
        *env.out << event.payload() << "\n";
      } else if ((progress->event() != "started" && progress->event() != "finished") ||
                 progress->rank() == 0) {
        *env.out << FormatProgress(*progress) << "\n";
      }
    } else if (event.kind() == "state") {
      // On stderr so that stdout stays the job's own output.
      *env.err << "-- job " << options.job_id << " is " << event.payload() << " --\n";
    }
    if (options.follow) *env.out << std::flush;
  };
  int64_t last_seq = 0;
  const grpc::Status status =
      WatchEvents(stub, env, options.job_id, options.follow, /*retry_from_start=*/false, &last_seq,
                  on_event, /*final_job=*/nullptr, WatchStart{options.tail, since_ms});
  *env.out << std::flush;
  if (!status.ok()) return ReportRpcError(status, env);
  if (json && !options.follow) PrintJson(env, collected);
  return kExitOk;
}

int RunCancel(int64_t job_id, v1::Coordinator::StubInterface* stub, const CommandEnv& env) {
  v1::CancelJobRequest request;
  request.set_job_id(job_id);
  v1::Job job;
  auto context = NewCallContext(env, /*unary=*/true);
  const grpc::Status status = stub->CancelJob(context.get(), request, &job);
  if (!status.ok()) return ReportRpcError(status, env);
  if (env.settings.json) {
    PrintJson(env, JobToJson(job));
  } else {
    *env.out << "job " << job.job_id() << ": " << StateName(job.state()) << "\n";
  }
  return kExitOk;
}

int RunHold(int64_t job_id, bool hold, v1::Coordinator::StubInterface* stub,
            const CommandEnv& env) {
  v1::Job job;
  auto context = NewCallContext(env, /*unary=*/true);
  grpc::Status status;
  if (hold) {
    v1::HoldJobRequest request;
    request.set_job_id(job_id);
    status = stub->HoldJob(context.get(), request, &job);
  } else {
    v1::ReleaseJobRequest request;
    request.set_job_id(job_id);
    status = stub->ReleaseJob(context.get(), request, &job);
  }
  if (!status.ok()) return ReportRpcError(status, env);
  if (env.settings.json) {
    PrintJson(env, JobToJson(job));
    return kExitOk;
  }
  *env.out << "job " << job.job_id() << ": " << StateName(job.state());
  if (job.state() != v1::PENDING) {
    *env.out << " (it started before the hold)";
  } else if (!job.waiting_reason().empty()) {
    *env.out << ", " << ShownReason(job);
  } else {
    *env.out << ", released";
  }
  *env.out << "\n";
  return kExitOk;
}

int RunSetPriority(int64_t job_id, int priority, v1::Coordinator::StubInterface* stub,
                   const CommandEnv& env) {
  v1::SetJobPriorityRequest request;
  request.set_job_id(job_id);
  request.set_priority(priority);
  v1::Job job;
  auto context = NewCallContext(env, /*unary=*/true);
  const grpc::Status status = stub->SetJobPriority(context.get(), request, &job);
  if (!status.ok()) return ReportRpcError(status, env);
  if (env.settings.json) {
    PrintJson(env, JobToJson(job));
  } else {
    *env.out << "job " << job.job_id() << ": priority " << job.priority();
    if (!job.waiting_reason().empty()) *env.out << " (" << ShownReason(job) << ")";
    *env.out << "\n";
  }
  return kExitOk;
}

std::string DefaultOwner(const char* user) {
  if (user == nullptr) return "";
  const std::string owner = user;
  const bool valid =
      !owner.empty() && owner.size() <= 64 && std::all_of(owner.begin(), owner.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '.' || c == '_' || c == '@' || c == '-';
      });
  return valid ? owner : "";
}

int RunCluster(v1::Coordinator::StubInterface* stub, const CommandEnv& env) {
  v1::GetClusterRequest request;
  v1::Cluster cluster;
  auto context = NewCallContext(env, /*unary=*/true);
  const grpc::Status status = stub->GetCluster(context.get(), request, &cluster);
  if (!status.ok()) return ReportRpcError(status, env);
  if (env.settings.json) {
    PrintJson(env, ClusterToJson(cluster));
  } else {
    *env.out << RenderCluster(cluster);
  }
  return kExitOk;
}

std::optional<int64_t> ParseDurationMs(const std::string& text) {
  if (text.size() < 2 || text.size() > 12 ||
      std::string("smhd").find(text.back()) == std::string::npos || text[0] == '-') {
    return std::nullopt;
  }
  int64_t count = 0;
  const char* last = text.data() + text.size() - 1;
  const auto [end, ec] = std::from_chars(text.data(), last, count);
  if (ec != std::errc() || end != last || count < 0) return std::nullopt;
  const int64_t unit = text.back() == 's'   ? 1000
                       : text.back() == 'm' ? 60 * 1000
                       : text.back() == 'h' ? 3600 * 1000
                                            : 24 * 3600 * 1000;
  // 12 characters: at most 10^11 units, which fits in int64 ms for every unit.
  return count * unit;
}

StatusOr<int64_t> ParseSince(const std::string& text, int64_t now_ms) {
  const std::string expected =
      "--since '" + OneLine(text, 40) +
      "': expected a duration (90s, 10m, 2h, 3d) or an RFC 3339 UTC time (2026-12-05T11:00:00Z)";
  if (const std::optional<int64_t> duration = ParseDurationMs(text)) {
    if (*duration > now_ms) return InvalidArgument(expected + ": before 1970");
    return now_ms - *duration;
  }
  // An RFC 3339 time in UTC: YYYY-MM-DDTHH:MM:SS[.fff]Z.
  std::tm tm{};
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0, consumed = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &year, &month, &day, &hour, &minute,
                  &second, &consumed) == 6 &&
      year >= 1970 && year <= 9999 && month >= 1 && month <= 12 && day >= 1 && day <= 31 &&
      hour <= 23 && minute <= 59 && second <= 60) {
    std::string rest = text.substr(static_cast<size_t>(consumed));
    int64_t millis = 0;
    if (!rest.empty() && rest[0] == '.') {
      size_t digits = 1;
      while (digits < rest.size() && digits <= 9 && rest[digits] >= '0' && rest[digits] <= '9') {
        if (digits <= 3) millis = millis * 10 + (rest[digits] - '0');
        ++digits;
      }
      for (size_t d = digits; d <= 3; ++d) millis *= 10;
      rest.erase(0, digits);
    }
    if (rest == "Z" || rest == "z") {
      tm.tm_year = year - 1900;
      tm.tm_mon = month - 1;
      tm.tm_mday = day;
      tm.tm_hour = hour;
      tm.tm_min = minute;
      tm.tm_sec = second;
      return static_cast<int64_t>(::timegm(&tm)) * 1000 + millis;
    }
  }
  return InvalidArgument(expected);
}

std::string CheckJobId(const std::string& text) {
  int64_t id = 0;
  const char* first = text.data();
  const char* last = text.data() + text.size();
  const bool digits =
      !text.empty() && std::all_of(first, last, [](char c) { return c >= '0' && c <= '9'; });
  const auto [end, ec] = std::from_chars(first, last, id);
  if (!digits || ec != std::errc() || end != last || id < 1) {
    return "'" + OneLine(text, 40) + "' is not a job id (a whole number from 1 to " +
           std::to_string(std::numeric_limits<int64_t>::max()) + ")";
  }
  return "";
}

}  // namespace dtrain::cli
