// What the dtrain CLI prints: aligned tables, durations ("3m12s"), ages ("5m ago"), timestamps,
// job details, progress lines, and the JSON forms behind --json.
//
// Every function here is pure: times come in as arguments (milliseconds since the Unix epoch),
// nothing is written anywhere, so the output can be tested byte for byte. The one exception is
// FormatLocalTime, which depends on the process's time zone.
#ifndef DTRAIN_RUNTIME_CLI_OUTPUT_H_
#define DTRAIN_RUNTIME_CLI_OUTPUT_H_

#include <grpcpp/support/status.h>

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "dtrain/v1/coordinator.pb.h"
#include "dtrain/v1/progress.pb.h"
#include "runtime/common/status.h"

namespace dtrain::cli {

// REASON cells in tables are cut to this many characters ("...").
constexpr size_t kMaxReasonWidth = 60;

// ---------------------------------------------------------------- durations, ages and times

// "0s", "45s", "3m12s", "2h05m", "3d04h"; negative durations are shown as "0s".
std::string FormatDuration(int64_t ms);
// How long ago `then_ms` was, coarsely: "just now", "12s ago", "5m ago", "3h ago", "2d ago".
// "-" when `then_ms` is 0 (never happened).
std::string FormatAge(int64_t then_ms, int64_t now_ms);
// RFC 3339 in UTC with milliseconds: "2024-05-01T12:34:56.789Z"; "" when `ms` is 0.
std::string FormatUtcTime(int64_t ms);
// "2024-05-01 14:34:56" in the local time zone; "-" when `ms` is 0.
std::string FormatLocalTime(int64_t ms);

// ---------------------------------------------------------------- text helpers

// Newlines and tabs become spaces; longer text is cut to `max_width` characters ending in "...".
std::string OneLine(const std::string& text, size_t max_width);

// A plain-text table: a header row, columns separated by two spaces, padded to the widest cell,
// no trailing blanks. Cells are byte strings; widths count UTF-8 code points.
class Table {
 public:
  enum class Align { kLeft, kRight };

  explicit Table(std::vector<std::string> headers);

  // Defaults to kLeft for every column.
  void SetAlign(size_t column, Align align);
  // Missing trailing cells are blank; extra cells are an error in the caller (asserted).
  void AddRow(std::vector<std::string> cells);
  size_t rows() const { return rows_.size(); }
  // Every line ends in '\n'.
  std::string Render() const;

 private:
  std::vector<std::string> headers_;
  std::vector<Align> align_;
  std::vector<std::vector<std::string>> rows_;
};

// ---------------------------------------------------------------- jobs and the cluster

// "PENDING", ..., "-" for JOB_STATE_UNSPECIFIED.
std::string StateName(v1::JobState state);
// Case-insensitive state name ("failed", "FAILED"); nullopt for anything else.
std::optional<v1::JobState> ParseJobState(const std::string& text);
bool IsTerminal(v1::JobState state);

// "1/3": the current (or last) attempt out of max_attempts; "0/1" before the first start.
std::string FormatAttempt(const v1::Job& job);
// The AGE/DURATION cell: PENDING: since submission ("5m ago"); RUNNING: time running so far
// ("3m12s"); terminal: run time of the last attempt ("3m12s"), or the age of the end when it
// never started.
std::string FormatAgeOrDuration(const v1::Job& job, int64_t now_ms);

// The REASON a table shows: for a queued job its place and why it waits ("#2: waiting for 2
// slots (0 of 4 free); 1 job ahead"), else the reason of its last transition.
std::string ShownReason(const v1::Job& job);
// ID NAME STATE RANKS PRIO ATTEMPT AGE/DURATION REASON.
// `metric` != "": a column with that metric of each job ("-" without it), after REASON's left.
// Array jobs are named "name[index]".
std::string RenderJobTable(const std::vector<v1::Job>& jobs, int64_t now_ms,
                           const std::string& metric = "");
// Every field of one job, for `dtrain status ID`: state, attempts, placement, times, failure,
// metrics (sorted by name) and history.
std::string RenderJobDetail(const v1::Job& job, int64_t now_ms);
// Why a job failed, for --follow and `status`: "rank 1 exited with code 3" or "rank 0 was killed
// by signal 9", then the last log lines indented by two spaces. "" when nothing is known.
std::string RenderFailure(const v1::Job& job);
// HOST TOTAL USED FREE, a total row, then the queue: "queue: 3 pending, 2 running".
std::string RenderCluster(const v1::Cluster& cluster);

// JSON forms for --json. Times are given both as *_ms (0 = never) and as RFC 3339 strings (null
// when never); int64 values stay numbers.
nlohmann::ordered_json JobToJson(const v1::Job& job);
nlohmann::ordered_json ClusterToJson(const v1::Cluster& cluster);
// {"seq", "at_ms", "at", "kind", "payload"}; a "progress" payload is embedded as an object.
nlohmann::ordered_json EventToJson(const v1::JobEvent& event);

// ---------------------------------------------------------------- progress

// Parses a "progress" event payload (the proto3 JSON form of ProgressEvent; unknown fields are
// ignored). INVALID_ARGUMENT when it is not such JSON.
StatusOr<v1::ProgressEvent> ParseProgress(const std::string& payload);
// True for "step" events: the ones shown on the live line that a terminal redraws in place.
bool IsLiveProgress(const v1::ProgressEvent& event);
// One line per event, e.g.
//   step:       "epoch 2/5  step 40/200  loss 0.4312  1234 samples/s  ETA 3m12s"
//   epoch:      "epoch 2/5 done in 45s: train_loss 0.4123, accuracy 0.9100"
//   checkpoint: "checkpoint at step 500: runs/x/checkpoints/ckpt-500.pt"
//   failed:     "rank 1 failed (exit code 3): loss became NaN at step 12"
std::string FormatProgress(const v1::ProgressEvent& event);

// A status line kept at the bottom of a terminal: Show() replaces it in place with '\r' and
// "erase to end of line"; Print() writes a permanent line above it (erasing and redrawing the
// live line); Replace() writes a permanent line in its place and drops it (it went stale, e.g.
// the epoch ended); Finish() ends it with a newline. Without a terminal every call is a plain
// line. Each call returns the bytes to write; the class writes nothing itself.
class LiveLine {
 public:
  explicit LiveLine(bool terminal) : terminal_(terminal) {}

  std::string Show(const std::string& line);
  std::string Print(const std::string& line);
  std::string Replace(const std::string& line);
  std::string Finish();

 private:
  bool terminal_;
  std::string current_;  // the live line shown now; "" when none
};

// ---------------------------------------------------------------- errors

// gRPC status code names as in the gRPC docs: "UNAUTHENTICATED", "UNAVAILABLE", ...
const char* GrpcCodeName(grpc::StatusCode code);
// "UNAUTHENTICATED: invalid bearer token (address 127.0.0.1:7070)".
std::string FormatRpcError(const grpc::Status& status, const std::string& address);

}  // namespace dtrain::cli

#endif  // DTRAIN_RUNTIME_CLI_OUTPUT_H_
