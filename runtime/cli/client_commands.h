// The client commands of the dtrain CLI, one function per command: each takes its parsed
// options, a Coordinator stub and a CommandEnv, prints its result and returns the process exit
// code. main.cc only parses the command line and builds the stub.
//
// Exit codes (also printed by `dtrain --help`):
//   0  success
//   1  the followed job FAILED (submit --follow)
//   2  bad usage or invalid input (unreadable spec, bad --set, a spec the coordinator rejected:
//      INVALID_ARGUMENT, or FAILED_PRECONDITION when it can never fit the cluster; unreadable
//      token or config file)
//   3  coordinator error or coordinator unreachable (the gRPC status is printed)
//   4  the followed job was CANCELLED (submit --follow)
//   5  no such job (NOT_FOUND)
//   6  refused in the current state (FAILED_PRECONDITION outside submit: cancel of a job that
//      already finished; faces: the store's detector is disabled)
//   130 interrupted (Ctrl-C on submit --follow; the job keeps running)
#ifndef DTRAIN_RUNTIME_CLI_CLIENT_COMMANDS_H_
#define DTRAIN_RUNTIME_CLI_CLIENT_COMMANDS_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "dtrain/v1/coordinator.grpc.pb.h"
#include "runtime/cli/config.h"
#include "runtime/common/status.h"

namespace dtrain::cli {

constexpr int kExitOk = 0;
constexpr int kExitJobFailed = 1;
constexpr int kExitUsage = 2;
constexpr int kExitServer = 3;
constexpr int kExitJobCancelled = 4;
constexpr int kExitNotFound = 5;
constexpr int kExitRefused = 6;
// Ctrl-C while following a job (128 + SIGINT, as a shell reports it); the job keeps running.
constexpr int kExitInterrupted = 130;

// How long a broken WatchJob stream (e.g. a coordinator restart) is retried before giving up,
// and the backoff between tries.
constexpr std::chrono::milliseconds kDefaultReconnectBudget{30000};
constexpr std::chrono::milliseconds kInitialReconnectBackoff{250};
constexpr std::chrono::milliseconds kMaxReconnectBackoff{4000};
// Page size used when listing jobs (the coordinator's maximum).
constexpr int kMaxListPageSize = 1000;
constexpr int kDefaultListLimit = 100;

// Checks a job id as typed on the command line: "" when it is a decimal integer in
// [1, INT64_MAX], else what is wrong ("'99999999999999999999' is not a job id (a whole
// number from 1 to 9223372036854775807)"). Used as a CLI11 validator, so it sees the text before
// any conversion could saturate it.
std::string CheckJobId(const std::string& text);

// What every client command shares. The streams are not owned and must outlive the command.
struct CommandEnv {
  ClientSettings settings;
  std::string token;             // bearer token sent with every call; "" = none
  std::ostream* out = nullptr;   // results
  std::ostream* err = nullptr;   // diagnostics ("dtrain: ...")
  bool out_is_terminal = false;  // redraw the live progress line in place
  std::chrono::milliseconds reconnect_budget = kDefaultReconnectBudget;
};

// A channel to the coordinator and the token its calls carry.
struct Connection {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::Coordinator::Stub> stub;
  std::string token;
};

// A channel to settings.address and the token its calls carry; any service's stub can use it.
struct Channel {
  std::shared_ptr<grpc::Channel> channel;
  std::string token;
};

// Reads the token (literal, or rpc::LoadToken on the token file), builds channel credentials
// (TLS when tls_ca is set) and a channel that reconnects quickly after a server restart.
// Errors name the token source (`config` names the config file); nothing is contacted yet.
// `max_receive_bytes` > 0 raises gRPC's 4 MiB limit on one reply.
StatusOr<Channel> OpenChannel(const ClientSettings& settings, const ConfigFile& config,
                              int max_receive_bytes = 0);
// OpenChannel plus a Coordinator stub.
StatusOr<Connection> Connect(const ClientSettings& settings, const ConfigFile& config);

// A call context with the bearer token and, for unary calls, the --timeout deadline.
std::unique_ptr<grpc::ClientContext> NewCallContext(const CommandEnv& env, bool unary);

// The exit code for a failed call: NOT_FOUND 5, INVALID_ARGUMENT 2, FAILED_PRECONDITION 6,
// anything else 3.
int ExitCodeForRpcError(grpc::StatusCode code);
// The exit code for a job that ended in `state`: SUCCEEDED 0, FAILED 1, CANCELLED 4 (others 3).
int ExitCodeForJobState(v1::JobState state);

// Parses "--set key=value" arguments into SubmitJobRequest.overrides. INVALID_ARGUMENT for a
// missing '=', an empty key, or a key given twice; the value may be empty and contain '='.
StatusOr<std::map<std::string, std::string>> ParseOverrides(const std::vector<std::string>& sets);

struct SubmitOptions {
  std::string job_file;
  int ranks = 0;  // 0: the spec's distributed.ranks
  int priority = 0;
  int max_attempts = 0;  // 0: the spec's restart.max_attempts
  std::vector<std::string> sets;
  bool follow = false;
  bool logs = false;               // with follow: print the job's log lines too
  std::vector<std::string> after;  // job ids that must SUCCEED first (each checked by CheckJobId)
  bool hold = false;               // queue it held
  std::string owner;               // "" = none
  std::string sweep;               // a sweep file: queue one job per trial (SubmitJobArray)
};

// `dtrain list --sort` keys. newest and oldest are the coordinator's order; the others sort the
// jobs fetched (the newest `limit`), like kubectl's --sort-by.
constexpr const char* kListSortKeys[] = {"newest", "oldest", "priority", "name", "state"};

struct ListOptions {
  std::string state;              // "" = all
  int limit = kDefaultListLimit;  // 0 = no limit
  std::string sort = "newest";    // one of kListSortKeys
  std::string name;               // glob the job name must match; "" = any
  std::string owner;              // exact owner; "" = any
  int64_t array_id = 0;           // only this array's jobs (a sweep's trials); 0 = any
  // "test.accuracy" (higher first) or "loss:min" (lower first): rank the jobs shown by this
  // metric, jobs without it last, and show it in a column. "" = no ranking.
  std::string rank_by;
};

struct LogsOptions {
  int64_t job_id = 0;
  bool follow = false;
  int64_t tail = 0;   // > 0: start with the last `tail` events (with rank: lines)
  std::string since;  // "" or a duration ("10m") or an RFC 3339 time: events from then on
  int rank = -1;      // >= 0: that rank's own output (GetRankLog) instead of the job's events
  bool stderr_stream = false;  // with rank: its stderr rather than its stdout
};

// "90s", "10m", "2h", "3d" in milliseconds; nullopt for anything else.
std::optional<int64_t> ParseDurationMs(const std::string& text);
// `logs --since`: "90s", "10m", "2h", "3d" before `now_ms`, or an RFC 3339 UTC time
// ("2026-12-05T11:00:00Z", fractional seconds allowed). INVALID_ARGUMENT naming the text.
StatusOr<int64_t> ParseSince(const std::string& text, int64_t now_ms);

// `dtrain submit`: "submitted job 12"; with follow, streams the job and returns its outcome.
int RunSubmit(const SubmitOptions& options, v1::Coordinator::StubInterface* stub,
              const CommandEnv& env);
// `dtrain status [ID]`: one job in detail, or the list when no id is given.
int RunStatus(std::optional<int64_t> job_id, v1::Coordinator::StubInterface* stub,
              const CommandEnv& env);
// `dtrain list`: every page up to the limit, as a table.
int RunList(const ListOptions& options, v1::Coordinator::StubInterface* stub,
            const CommandEnv& env);
// `dtrain logs ID [-f]`: log lines (and formatted progress) from the start. With a rank, that
// rank's own stdout or stderr of the latest attempt, as it wrote it.
int RunLogs(const LogsOptions& options, v1::Coordinator::StubInterface* stub,
            const CommandEnv& env);
// `dtrain cancel ID`: prints the job's new state.
int RunCancel(int64_t job_id, v1::Coordinator::StubInterface* stub, const CommandEnv& env);
// `dtrain hold ID` (hold true) and `dtrain release ID` (false): "job 7: PENDING, held".
int RunHold(int64_t job_id, bool hold, v1::Coordinator::StubInterface* stub, const CommandEnv& env);
// `dtrain priority ID N`: "job 7: priority 50 (#1: ...)".
int RunSetPriority(int64_t job_id, int priority, v1::Coordinator::StubInterface* stub,
                   const CommandEnv& env);
// The owner `submit` sends unless --owner is given: $USER when it is a valid owner (1 to 64 of
// A-Z a-z 0-9 . _ @ -), else "".
std::string DefaultOwner(const char* user);
// `dtrain cluster`: slots per host and the queue.
int RunCluster(v1::Coordinator::StubInterface* stub, const CommandEnv& env);

// Streams the events of `job_id` after `*last_seq` to `on_event`, advancing `*last_seq` and
// skipping events already seen. When the stream breaks (UNAVAILABLE, CANCELLED, ABORTED) it
// reconnects from `*last_seq` with backoff for up to env.reconnect_budget; before any event
// arrived this happens only when `retry_from_start` (the coordinator was reachable before).
// With follow, returns once the job is terminal and, when `final_job` is given, stores it there.
// Where a watch starts when *last_seq is 0 (WatchJobRequest.tail and since_ms).
struct WatchStart {
  int64_t tail = 0;
  int64_t since_ms = 0;
};
grpc::Status WatchEvents(v1::Coordinator::StubInterface* stub, const CommandEnv& env,
                         int64_t job_id, bool follow, bool retry_from_start, int64_t* last_seq,
                         const std::function<void(const v1::JobEvent&)>& on_event,
                         v1::Job* final_job, WatchStart start = {});

}  // namespace dtrain::cli

#endif  // DTRAIN_RUNTIME_CLI_CLIENT_COMMANDS_H_
