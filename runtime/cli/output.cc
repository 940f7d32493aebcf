#include "runtime/cli/output.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cassert>
#include <cctype>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <map>
#include <utility>

namespace dtrain::cli {
namespace {

constexpr int64_t kSecond = 1000;
constexpr int64_t kMinute = 60 * kSecond;
constexpr int64_t kHour = 60 * kMinute;
constexpr int64_t kDay = 24 * kHour;
// Column gap in tables.
constexpr char kGap[] = "  ";
constexpr char kEraseLine[] = "\r\033[K";
constexpr size_t kMaxNameWidth = 32;

// printf into a std::string.
template <typename... Args>
std::string Format(const char* format, Args... args) {
  char buffer[128];
  const int n = std::snprintf(buffer, sizeof(buffer), format, args...);
  if (n < 0) return "";
  if (static_cast<size_t>(n) < sizeof(buffer)) return std::string(buffer, n);
  std::string out(static_cast<size_t>(n) + 1, '\0');
  std::snprintf(out.data(), out.size(), format, args...);
  out.resize(static_cast<size_t>(n));
  return out;
}

std::string Int(int64_t v) { return std::to_string(v); }

// UTF-8 aware widths: continuation bytes (10xxxxxx) do not start a character.
size_t Utf8Length(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// The first `count` characters of `s`.
std::string Utf8Prefix(const std::string& s, size_t count) {
  size_t chars = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
      if (chars == count) return s.substr(0, i);
      ++chars;
    }
  }
  return s;
}

std::string TrimRight(std::string s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

std::vector<std::string> SplitLines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
    start = end + 1;
  }
  return lines;
}

const char* SignalName(int signal) {
  switch (signal) {
    case 1:
      return "SIGHUP";
    case 2:
      return "SIGINT";
    case 3:
      return "SIGQUIT";
    case 4:
      return "SIGILL";
    case 6:
      return "SIGABRT";
    case 7:
      return "SIGBUS";
    case 8:
      return "SIGFPE";
    case 9:
      return "SIGKILL";
    case 11:
      return "SIGSEGV";
    case 13:
      return "SIGPIPE";
    case 15:
      return "SIGTERM";
    default:
      return nullptr;
  }
}

// Map entries sorted by key: protobuf maps iterate in no particular order.
template <typename Map>
std::vector<std::pair<std::string, double>> Sorted(const Map& map) {
  std::vector<std::pair<std::string, double>> out(map.begin(), map.end());
  std::sort(out.begin(), out.end());
  return out;
}

std::string Metric(double v) { return Format("%.6g", v); }

nlohmann::ordered_json TimeJson(int64_t ms) {
  return ms > 0 ? nlohmann::ordered_json(FormatUtcTime(ms)) : nlohmann::ordered_json(nullptr);
}

// Numeric top-level entries of a Struct, "key value" each, sorted by key.
std::vector<std::string> NumericFields(const google::protobuf::Struct& s) {
  std::vector<std::pair<std::string, double>> numbers;
  for (const auto& [key, value] : s.fields()) {
    if (value.kind_case() == google::protobuf::Value::kNumberValue) {
      numbers.emplace_back(key, value.number_value());
    }
  }
  std::sort(numbers.begin(), numbers.end());
  std::vector<std::string> out;
  for (const auto& [key, value] : numbers) out.push_back(key + " " + Metric(value));
  return out;
}

std::string Join(const std::vector<std::string>& parts, const std::string& separator) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i == 0 ? "" : separator) + parts[i];
  return out;
}

}  // namespace

// ---------------------------------------------------------------- durations, ages and times

std::string FormatDuration(int64_t ms) {
  if (ms < 0) ms = 0;
  if (ms < kMinute) return Int(ms / kSecond) + "s";
  if (ms < kHour) return Format("%" PRId64 "m%02" PRId64 "s", ms / kMinute, ms % kMinute / kSecond);
  if (ms < kDay) return Format("%" PRId64 "h%02" PRId64 "m", ms / kHour, ms % kHour / kMinute);
  return Format("%" PRId64 "d%02" PRId64 "h", ms / kDay, ms % kDay / kHour);
}

std::string FormatAge(int64_t then_ms, int64_t now_ms) {
  if (then_ms <= 0) return "-";
  const int64_t age = now_ms - then_ms;
  if (age < kSecond) return "just now";
  if (age < kMinute) return Int(age / kSecond) + "s ago";
  if (age < kHour) return Int(age / kMinute) + "m ago";
  if (age < kDay) return Int(age / kHour) + "h ago";
  return Int(age / kDay) + "d ago";
}

std::string FormatUtcTime(int64_t ms) {
  if (ms <= 0) return "";
  const std::time_t seconds = static_cast<std::time_t>(ms / kSecond);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char date[32];
  std::strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
  return Format("%s.%03dZ", date, static_cast<int>(ms % kSecond));
}

std::string FormatLocalTime(int64_t ms) {
  if (ms <= 0) return "-";
  const std::time_t seconds = static_cast<std::time_t>(ms / kSecond);
  std::tm tm{};
  localtime_r(&seconds, &tm);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%d %H:%M:%S", &tm);
  return text;
}

// ---------------------------------------------------------------- text helpers

std::string OneLine(const std::string& text, size_t max_width) {
  std::string flat = text;
  for (char& c : flat) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  flat = TrimRight(std::move(flat));
  if (Utf8Length(flat) <= max_width) return flat;
  if (max_width <= 3) return Utf8Prefix(flat, max_width);
  return Utf8Prefix(flat, max_width - 3) + "...";
}

Table::Table(std::vector<std::string> headers)
    : headers_(std::move(headers)), align_(headers_.size(), Align::kLeft) {}

void Table::SetAlign(size_t column, Align align) {
  assert(column < align_.size());
  align_[column] = align;
}

void Table::AddRow(std::vector<std::string> cells) {
  assert(cells.size() <= headers_.size());
  cells.resize(headers_.size());
  rows_.push_back(std::move(cells));
}

std::string Table::Render() const {
  const size_t columns = headers_.size();
  std::vector<size_t> width(columns, 0);
  for (size_t c = 0; c < columns; ++c) {
    width[c] = Utf8Length(headers_[c]);
    for (const auto& row : rows_) width[c] = std::max(width[c], Utf8Length(row[c]));
  }
  auto render_row = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t c = 0; c < columns; ++c) {
      const std::string padding(width[c] - Utf8Length(row[c]), ' ');
      if (c > 0) line += kGap;
      line += align_[c] == Align::kRight ? padding + row[c] : row[c] + padding;
    }
    return TrimRight(std::move(line)) + "\n";
  };
  std::string out = render_row(headers_);
  for (const auto& row : rows_) out += render_row(row);
  return out;
}

// ---------------------------------------------------------------- jobs and the cluster

std::string StateName(v1::JobState state) {
  if (state == v1::JOB_STATE_UNSPECIFIED) return "-";
  const std::string& name = v1::JobState_Name(state);
  return name.empty() ? "STATE_" + Int(state) : name;
}

std::optional<v1::JobState> ParseJobState(const std::string& text) {
  std::string upper = text;
  std::transform(upper.begin(), upper.end(), upper.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  if (upper == "CANCELED") upper = "CANCELLED";
  v1::JobState state;
  if (!v1::JobState_Parse(upper, &state) || state == v1::JOB_STATE_UNSPECIFIED) {
    return std::nullopt;
  }
  return state;
}

bool IsTerminal(v1::JobState state) {
  return state == v1::SUCCEEDED || state == v1::FAILED || state == v1::CANCELLED;
}

std::string FormatAttempt(const v1::Job& job) {
  return Int(job.attempt()) + "/" + Int(std::max(job.max_attempts(), 1));
}

std::string FormatAgeOrDuration(const v1::Job& job, int64_t now_ms) {
  switch (job.state()) {
    case v1::PENDING:
      return FormatAge(job.submitted_ms(), now_ms);
    case v1::RUNNING:
      return job.started_ms() > 0 ? FormatDuration(now_ms - job.started_ms()) : "-";
    default:
      if (job.started_ms() > 0 && job.finished_ms() >= job.started_ms()) {
        return FormatDuration(job.finished_ms() - job.started_ms());
      }
      return FormatAge(job.finished_ms(), now_ms);
  }
}

std::string ShownReason(const v1::Job& job) {
  if (job.state() != v1::PENDING || job.waiting_reason().empty()) return job.reason();
  // Position 0: held or waiting for a dependency, so not in the start order.
  if (job.queue_position() < 1) return job.waiting_reason();
  return "#" + Int(job.queue_position()) + ": " + job.waiting_reason();
}

std::string RenderJobTable(const std::vector<v1::Job>& jobs, int64_t now_ms,
                           const std::string& metric) {
  if (jobs.empty()) return "no jobs\n";
  std::vector<std::string> headers = {"ID",   "NAME",    "OWNER",        "STATE", "RANKS",
                                      "PRIO", "ATTEMPT", "AGE/DURATION", "REASON"};
  if (!metric.empty()) headers.insert(headers.end() - 1, OneLine(metric, kMaxNameWidth));
  Table table(headers);
  for (size_t column : {0, 4, 5, 6}) table.SetAlign(column, Table::Align::kRight);
  if (!metric.empty()) table.SetAlign(8, Table::Align::kRight);
  for (const v1::Job& job : jobs) {
    std::string name = OneLine(job.name(), kMaxNameWidth);
    if (job.array_id() != 0) name += "[" + Int(job.array_index()) + "]";
    std::vector<std::string> row = {Int(job.job_id()),
                                    name,
                                    job.owner().empty() ? "-" : job.owner(),
                                    StateName(job.state()),
                                    Int(job.ranks()),
                                    Int(job.priority()),
                                    FormatAttempt(job),
                                    FormatAgeOrDuration(job, now_ms),
                                    OneLine(ShownReason(job), kMaxReasonWidth)};
    if (!metric.empty()) {
      const auto value = job.metrics().find(metric);
      row.insert(row.end() - 1, value == job.metrics().end() ? "-" : Metric(value->second));
    }
    table.AddRow(std::move(row));
  }
  return table.Render();
}

std::string RenderFailure(const v1::Job& job) {
  std::string who = job.failing_rank() >= 0 ? "rank " + Int(job.failing_rank()) : "the job";
  std::string out;
  if (job.rank_signal() > 0 && job.failing_rank() >= 0) {
    const char* name = SignalName(job.rank_signal());
    out = who + " was killed by signal " + Int(job.rank_signal()) +
          (name != nullptr ? std::string(" (") + name + ")" : "") + "\n";
  } else if (job.signal() > 0) {
    const char* name = SignalName(job.signal());
    out = who + " was killed by signal " + Int(job.signal()) +
          (name != nullptr ? std::string(" (") + name + ")" : "") + "\n";
  } else if (job.exit_code() != 0 || job.failing_rank() >= 0) {
    out = who + " exited with code " + Int(job.exit_code()) + "\n";
  }
  const std::vector<std::string> lines = SplitLines(job.last_log_lines());
  if (!lines.empty()) {
    out += "last log lines:\n";
    for (const std::string& line : lines) out += "  " + line + "\n";
  }
  return out;
}

std::string RenderJobDetail(const v1::Job& job, int64_t now_ms) {
  std::string out =
      "job " + Int(job.job_id()) + (job.name().empty() ? "" : " (" + job.name() + ")") + "\n";
  std::vector<std::pair<std::string, std::string>> fields;
  fields.emplace_back("state", StateName(job.state()));
  fields.emplace_back("attempt", FormatAttempt(job));
  if (!job.reason().empty()) fields.emplace_back("reason", OneLine(job.reason(), 200));
  if (job.state() == v1::PENDING && job.queue_position() > 0) {
    fields.emplace_back("queue", "position " + Int(job.queue_position()) + ": " +
                                     OneLine(job.waiting_reason(), 200));
  } else if (job.state() == v1::PENDING && !job.waiting_reason().empty()) {
    fields.emplace_back("queue", "not startable: " + OneLine(job.waiting_reason(), 200));
  }
  if (!job.owner().empty()) fields.emplace_back("owner", job.owner());
  if (job.array_id() != 0) {
    fields.emplace_back("array", Int(job.array_id()) + "[" + Int(job.array_index()) + "]");
  }
  if (job.held()) fields.emplace_back("held", "yes (dtrain release " + Int(job.job_id()) + ")");
  if (job.after_size() > 0) {
    std::string after;
    for (int64_t id : job.after()) after += (after.empty() ? "" : ",") + Int(id);
    fields.emplace_back("after", after + " (starts once these SUCCEEDED)");
  }
  fields.emplace_back("ranks", Int(job.ranks()));
  fields.emplace_back("priority", Int(job.priority()));
  fields.emplace_back("placement", job.placement().empty() ? "-" : job.placement());
  fields.emplace_back("output_dir",
                      job.output_dir().empty() ? "- (chosen when it starts)" : job.output_dir());
  fields.emplace_back("submitted", FormatLocalTime(job.submitted_ms()) + " (" +
                                       FormatAge(job.submitted_ms(), now_ms) + ")");
  if (job.started_ms() > 0) {
    std::string started = FormatLocalTime(job.started_ms());
    if (job.submitted_ms() > 0 && job.attempt() <= 1) {
      started += " (queued " + FormatDuration(job.started_ms() - job.submitted_ms()) + ")";
    }
    fields.emplace_back("started", started);
  } else {
    fields.emplace_back("started", "-");
  }
  if (job.finished_ms() > 0) {
    std::string finished = FormatLocalTime(job.finished_ms());
    if (job.started_ms() > 0) {
      finished += " (ran " + FormatDuration(job.finished_ms() - job.started_ms()) + ")";
    }
    fields.emplace_back("finished", finished);
  } else if (job.state() == v1::RUNNING && job.started_ms() > 0) {
    fields.emplace_back("running", FormatDuration(now_ms - job.started_ms()));
  }
  if (job.compacted_ms() > 0) {
    fields.emplace_back("logs", "removed by retention " + FormatLocalTime(job.compacted_ms()) +
                                    " (history and last lines kept)");
  }
  size_t key_width = 0;
  for (const auto& [key, value] : fields) key_width = std::max(key_width, key.size());
  for (const auto& [key, value] : fields) {
    out += "  " + key + std::string(key_width - key.size() + 2, ' ') + value + "\n";
  }

  if (job.state() == v1::FAILED) {
    const std::string failure = RenderFailure(job);
    if (!failure.empty()) {
      out += "failure:\n";
      for (const std::string& line : SplitLines(failure)) out += "  " + line + "\n";
    }
  } else if (!job.last_log_lines().empty()) {
    out += "last log lines:\n";
    for (const std::string& line : SplitLines(job.last_log_lines())) out += "  " + line + "\n";
  }
  if (!job.metrics().empty()) {
    out += "metrics:\n";
    Table metrics({"NAME", "VALUE"});
    metrics.SetAlign(1, Table::Align::kRight);
    for (const auto& [name, value] : Sorted(job.metrics())) metrics.AddRow({name, Metric(value)});
    for (const std::string& line : SplitLines(metrics.Render())) out += "  " + line + "\n";
  }
  if (job.history_size() > 0) {
    out += "history:\n";
    Table history({"TIME", "FROM", "TO", "ATTEMPT", "REASON"});
    history.SetAlign(3, Table::Align::kRight);
    for (const v1::Transition& t : job.history()) {
      history.AddRow({FormatLocalTime(t.at_ms()), StateName(t.from()), StateName(t.to()),
                      Int(t.attempt()), OneLine(t.reason(), kMaxReasonWidth)});
    }
    for (const std::string& line : SplitLines(history.Render())) out += "  " + line + "\n";
  }
  return out;
}

std::string RenderCluster(const v1::Cluster& cluster) {
  Table table({"HOST", "TOTAL", "USED", "FREE"});
  for (size_t column : {1, 2, 3}) table.SetAlign(column, Table::Align::kRight);
  for (const v1::HostSlots& host : cluster.hosts()) {
    table.AddRow({host.name(), Int(host.total()), Int(host.used()), Int(host.free())});
  }
  if (cluster.hosts_size() > 1) {
    table.AddRow({"(all)", Int(cluster.total_slots()), Int(cluster.used_slots()),
                  Int(cluster.free_slots())});
  }
  return table.Render() + "queue: " + Int(cluster.queue_length()) + " pending, " +
         Int(cluster.running_jobs()) + " running\n";
}

nlohmann::ordered_json JobToJson(const v1::Job& job) {
  nlohmann::ordered_json j = {
      {"job_id", job.job_id()},
      {"name", job.name()},
      {"state", StateName(job.state())},
      {"ranks", job.ranks()},
      {"priority", job.priority()},
      {"attempt", job.attempt()},
      {"max_attempts", job.max_attempts()},
      {"submitted_ms", job.submitted_ms()},
      {"submitted", TimeJson(job.submitted_ms())},
      {"started_ms", job.started_ms()},
      {"started", TimeJson(job.started_ms())},
      {"finished_ms", job.finished_ms()},
      {"finished", TimeJson(job.finished_ms())},
      {"reason", job.reason()},
      {"placement", job.placement()},
      {"failing_rank", job.failing_rank()},
      {"exit_code", job.exit_code()},
      {"signal", job.signal()},
      {"rank_signal", job.rank_signal()},
      {"last_log_lines", job.last_log_lines()},
      {"output_dir", job.output_dir()},
      {"queue_position", job.queue_position()},
      {"waiting_reason", job.waiting_reason()},
      {"owner", job.owner()},
      {"held", job.held()},
      {"after", std::vector<int64_t>(job.after().begin(), job.after().end())},
      {"array_id", job.array_id()},
      {"array_index", job.array_index()},
      {"compacted_ms", job.compacted_ms()},
      {"compacted", TimeJson(job.compacted_ms())},
  };
  nlohmann::ordered_json metrics = nlohmann::ordered_json::object();
  for (const auto& [name, value] : Sorted(job.metrics())) {
    // JSON has no NaN or infinity.
    metrics[name] =
        std::isfinite(value) ? nlohmann::ordered_json(value) : nlohmann::ordered_json(nullptr);
  }
  j["metrics"] = std::move(metrics);
  nlohmann::ordered_json history = nlohmann::ordered_json::array();
  for (const v1::Transition& t : job.history()) {
    history.push_back({{"from", StateName(t.from())},
                       {"to", StateName(t.to())},
                       {"attempt", t.attempt()},
                       {"at_ms", t.at_ms()},
                       {"at", TimeJson(t.at_ms())},
                       {"reason", t.reason()}});
  }
  j["history"] = std::move(history);
  if (!job.spec_yaml().empty()) j["spec_yaml"] = job.spec_yaml();
  return j;
}

nlohmann::ordered_json ClusterToJson(const v1::Cluster& cluster) {
  nlohmann::ordered_json hosts = nlohmann::ordered_json::array();
  for (const v1::HostSlots& host : cluster.hosts()) {
    hosts.push_back({{"name", host.name()},
                     {"total", host.total()},
                     {"used", host.used()},
                     {"free", host.free()}});
  }
  return {{"hosts", std::move(hosts)},
          {"total_slots", cluster.total_slots()},
          {"used_slots", cluster.used_slots()},
          {"free_slots", cluster.free_slots()},
          {"queue_length", cluster.queue_length()},
          {"running_jobs", cluster.running_jobs()}};
}

nlohmann::ordered_json EventToJson(const v1::JobEvent& event) {
  nlohmann::ordered_json j = {{"job_id", event.job_id()},
                              {"seq", event.seq()},
                              {"at_ms", event.at_ms()},
                              {"at", TimeJson(event.at_ms())},
                              {"kind", event.kind()}};
  if (event.kind() == "progress") {
    nlohmann::ordered_json payload =
        nlohmann::ordered_json::parse(event.payload(), nullptr, /*allow_exceptions=*/false);
    j["payload"] = payload.is_discarded() ? nlohmann::ordered_json(event.payload()) : payload;
  } else {
    j["payload"] = event.payload();
  }
  return j;
}

// ---------------------------------------------------------------- progress

StatusOr<v1::ProgressEvent> ParseProgress(const std::string& payload) {
  v1::ProgressEvent event;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  const auto status = google::protobuf::util::JsonStringToMessage(payload, &event, options);
  if (!status.ok()) {
    return InvalidArgument("progress event is not valid ProgressEvent JSON: " +
                           std::string(status.message()));
  }
  return event;
}

bool IsLiveProgress(const v1::ProgressEvent& event) { return event.event() == "step"; }

std::string FormatProgress(const v1::ProgressEvent& e) {
  const std::string epoch = e.epochs() > 0  ? "epoch " + Int(e.epoch()) + "/" + Int(e.epochs())
                            : e.epoch() > 0 ? "epoch " + Int(e.epoch())
                                            : "";
  std::vector<std::string> parts;
  if (e.event() == "step") {
    if (!epoch.empty()) parts.push_back(epoch);
    parts.push_back(e.steps_per_epoch() > 0
                        ? "step " + Int(e.step_in_epoch()) + "/" + Int(e.steps_per_epoch())
                        : "step " + Int(e.step()));
    parts.push_back(Format("loss %.4f", e.loss()));
    if (e.lr() > 0) parts.push_back(Format("lr %.3g", e.lr()));
    if (e.samples_per_s() > 0) {
      parts.push_back(Format(e.samples_per_s() >= 100 ? "%.0f samples/s" : "%.1f samples/s",
                             e.samples_per_s()));
    }
    if (e.eta_s() > 0) {
      parts.push_back("ETA " + FormatDuration(static_cast<int64_t>(e.eta_s() * 1000)));
    }
    return Join(parts, "  ");
  }
  if (e.event() == "epoch") {
    std::string line = (epoch.empty() ? "epoch" : epoch) + " done";
    if (e.seconds() > 0) {
      line += " in " + FormatDuration(static_cast<int64_t>(e.seconds() * 1000));
    }
    parts.push_back(Format("train_loss %.4f", e.train_loss()));
    for (const auto& [name, value] : Sorted(e.metrics())) {
      parts.push_back(name + " " + Metric(value));
    }
    return line + ": " + Join(parts, ", ");
  }
  if (e.event() == "checkpoint") {
    return "checkpoint at step " + Int(e.step()) + (e.path().empty() ? "" : ": " + e.path());
  }
  if (e.event() == "started") {
    return "started" + (e.world_size() > 0 ? " on " + Int(e.world_size()) + " rank" +
                                                 (e.world_size() == 1 ? "" : "s")
                                           : "");
  }
  if (e.event() == "finished") {
    // The test metrics first (what a user waits for), then the other numbers of the summary.
    const auto& fields = e.summary().fields();
    std::vector<std::string> parts;
    auto test = fields.find("test");
    if (test != fields.end() && test->second.kind_case() == google::protobuf::Value::kStructValue) {
      for (const std::string& metric : NumericFields(test->second.struct_value())) {
        parts.push_back("test " + metric);
      }
    }
    for (const std::string& number : NumericFields(e.summary())) parts.push_back(number);
    return "finished" + (parts.empty() ? "" : ": " + Join(parts, ", "));
  }
  if (e.event() == "warning") {
    return "rank " + Int(e.rank()) + " warning: " + OneLine(e.message(), 500);
  }
  if (e.event() == "failed") {
    return "rank " + Int(e.rank()) + " failed" +
           (e.exit_code() != 0 ? " (exit code " + Int(e.exit_code()) + ")" : "") +
           (e.message().empty() ? "" : ": " + OneLine(e.message(), 500));
  }
  return (e.event().empty() ? "progress" : e.event()) + " event";
}

std::string LiveLine::Show(const std::string& line) {
  if (!terminal_) return line + "\n";
  current_ = line;
  return kEraseLine + line;
}

std::string LiveLine::Print(const std::string& line) {
  if (!terminal_ || current_.empty()) return line + "\n";
  return kEraseLine + line + "\n" + current_;
}

std::string LiveLine::Replace(const std::string& line) {
  if (!terminal_ || current_.empty()) return line + "\n";
  current_.clear();
  return kEraseLine + line + "\n";
}

std::string LiveLine::Finish() {
  if (!terminal_ || current_.empty()) return "";
  current_.clear();
  return "\n";
}

// ---------------------------------------------------------------- errors

const char* GrpcCodeName(grpc::StatusCode code) {
  // gRPC's codes are dtrain's (runtime/common/status.h keeps them one to one).
  const int value = static_cast<int>(code);
  if (value < 0 || value > static_cast<int>(StatusCode::kUnauthenticated)) return "UNKNOWN";
  return StatusCodeName(static_cast<StatusCode>(value));
}

std::string FormatRpcError(const grpc::Status& status, const std::string& address) {
  std::string message = status.error_message();
  if (message.empty()) message = "(no message)";
  return std::string(GrpcCodeName(status.error_code())) + ": " + message + " (address " + address +
         ")";
}

}  // namespace dtrain::cli
