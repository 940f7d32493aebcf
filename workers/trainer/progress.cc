#include "workers/trainer/progress.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <ctime>
#include <iostream>
#include <random>

namespace dtrain::trainer {
namespace {

std::string NowIso8601() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) % 1000;
  std::tm tm;
  gmtime_r(&t, &tm);
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms.count()));
  return buf;
}

// JSON has no NaN/inf: report them as strings so the line stays parseable.
nlohmann::json Number(double v) {
  if (std::isfinite(v)) return v;
  return std::isnan(v) ? "NaN" : (v > 0 ? "Infinity" : "-Infinity");
}

nlohmann::json StepMetrics(const StepReport& s) {
  nlohmann::json m = nlohmann::json::object();
  for (const auto& [name, value] : s.metrics) m[name] = Number(value);
  return m;
}

}  // namespace

std::string FormatDuration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const long s = std::lround(seconds);
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof(buf), "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  } else {
    std::snprintf(buf, sizeof(buf), "%ld:%02ld", s / 60, s % 60);
  }
  return buf;
}

ProgressReporter::ProgressReporter(ProgressOptions options) : options_(std::move(options)) {
  if (options_.rank == 0) {
    live_ = options_.human == HumanProgress::kTty ||
            (options_.human == HumanProgress::kAuto && ::isatty(STDERR_FILENO));
    if (!options_.metrics_path.empty()) {
      metrics_ = std::fopen(options_.metrics_path.c_str(), "a");
      if (metrics_ == nullptr) {
        Human("warning: cannot open " + options_.metrics_path +
              " for writing; metrics go only "
              "to the progress stream");
      }
    }
    if (!options_.tensorboard_dir.empty()) {
      StatusOr<std::unique_ptr<TensorBoardWriter>> writer =
          TensorBoardWriter::Open(options_.tensorboard_dir);
      if (writer.ok()) {
        tensorboard_ = std::move(writer).value();
      } else {
        Human("warning: no TensorBoard events: " + writer.status().message());
      }
    }
  }
}

ProgressReporter::~ProgressReporter() {
  FlushTensorBoard();
  ClearLiveLine();
  if (metrics_ != nullptr) std::fclose(metrics_);
}

std::string NewRunId() {
  const std::time_t t = std::time(nullptr);
  std::tm tm;
  gmtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
  std::random_device random;
  char id[48];
  std::snprintf(id, sizeof(id), "%s-%08x", stamp, static_cast<unsigned>(random()));
  return id;
}

void ProgressReporter::Stamp(nlohmann::json* event) const {
  (*event)["time"] = NowIso8601();
  (*event)["job"] = options_.job;
  if (!options_.run_id.empty()) (*event)["run_id"] = options_.run_id;
  (*event)["rank"] = options_.rank;
  (*event)["world_size"] = options_.world_size;
}

void ProgressReporter::Record(nlohmann::json event) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  if (metrics_ == nullptr) return;
  Stamp(&event);
  event["type"] = event["event"];
  std::fprintf(metrics_, "%s\n", event.dump().c_str());
  // Steps are many: flushed with the epoch lines, which are few.
  if (event["event"] != "step") std::fflush(metrics_);
}

void ProgressReporter::Emit(nlohmann::json event) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  if (!options_.json_lines) return;
  Stamp(&event);
  // One write per line so lines of different ranks forwarded by mpirun do not interleave.
  const std::string line = event.dump() + "\n";
  std::fwrite(line.data(), 1, line.size(), options_.json_out);
  std::fflush(options_.json_out);
}

void ProgressReporter::ClearLiveLine() {
  if (live_line_shown_) {
    std::fputs("\r\033[K", stderr);
    live_line_shown_ = false;
  }
}

void ProgressReporter::Human(const std::string& line) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  if (options_.rank != 0 || options_.human == HumanProgress::kNone) return;
  ClearLiveLine();
  std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
}

void ProgressReporter::Scalars(const std::vector<std::pair<std::string, double>>& values,
                               int64_t step) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  for (const auto& [tag, value] : values) {
    if (tensorboard_ == nullptr) return;
    const Status written = tensorboard_->AddScalar(tag, step, value);
    if (!written.ok()) {
      Human("warning: TensorBoard events stop here: " + written.message());
      tensorboard_.reset();
    }
  }
}

void ProgressReporter::Image(const std::string& tag, const SummaryImage& image) {
  if (options_.rank != 0) return;
  std::lock_guard<std::recursive_mutex> lock(mu_);
  if (tensorboard_ == nullptr) return;
  const Status written = tensorboard_->AddImage(tag, last_step_, image);
  if (!written.ok()) {
    Human("warning: TensorBoard events stop here: " + written.message());
    tensorboard_.reset();
  }
}

void ProgressReporter::FlushTensorBoard() {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  if (tensorboard_ == nullptr) return;
  const Status flushed = tensorboard_->Flush();
  if (!flushed.ok()) {
    Human("warning: TensorBoard events stop here: " + flushed.message());
    tensorboard_.reset();
  }
}

void ProgressReporter::Info(const std::string& line) { Human("[" + options_.job + "] " + line); }

void ProgressReporter::Started(const nlohmann::json& details) {
  nlohmann::json e = {{"event", "started"}, {"details", details}};
  if (options_.rank == 0) Record(e);
  Emit(e);
}

void ProgressReporter::Step(const StepReport& s, bool print) {
  if (options_.rank != 0) return;
  last_step_ = s.global_step;
  if (tensorboard_ != nullptr) {
    std::vector<std::pair<std::string, double>> scalars = {
        {"train/loss", s.loss},
        {"train/learning_rate", s.lr},
        {"train/samples_per_s", s.samples_per_s},
        {"train/allreduce_wait_s", s.comm_wait_s},
        {"train/backward_s", s.backward_s}};
    for (const auto& [name, value] : s.metrics) scalars.emplace_back("train/" + name, value);
    Scalars(scalars, s.global_step);
  }
  nlohmann::json event = {{"event", "step"},
                          {"epoch", s.epoch + 1},
                          {"epochs", s.epochs},
                          {"step", s.global_step},
                          {"step_in_epoch", s.step_in_epoch},
                          {"steps_per_epoch", s.steps_per_epoch},
                          {"loss", Number(s.loss)},
                          {"lr", s.lr},
                          {"samples_per_s", s.samples_per_s},
                          {"eta_s", s.eta_s}};
  if (!s.metrics.empty()) event["metrics"] = StepMetrics(s);
  nlohmann::json recorded = event;
  recorded["comm_wait_s"] = s.comm_wait_s;
  recorded["backward_s"] = s.backward_s;
  Record(std::move(recorded));
  if (!print) return;
  Emit(event);
  if (options_.human == HumanProgress::kNone) return;
  char line[256];
  const int width = 20;
  const int filled =
      s.steps_per_epoch > 0 ? static_cast<int>(width * s.step_in_epoch / s.steps_per_epoch) : 0;
  std::string bar(filled, '=');
  if (filled < width) bar += '>' + std::string(width - filled - 1, ' ');
  std::snprintf(line, sizeof(line),
                "epoch %lld/%lld [%s] step %lld/%lld  loss %.4f  lr %.3g  %.0f samples/s  ETA %s",
                static_cast<long long>(s.epoch + 1), static_cast<long long>(s.epochs), bar.c_str(),
                static_cast<long long>(s.step_in_epoch), static_cast<long long>(s.steps_per_epoch),
                s.loss, s.lr, s.samples_per_s, FormatDuration(s.eta_s).c_str());
  std::string text = line;
  for (const auto& [name, value] : s.metrics) {
    char metric[96];
    std::snprintf(metric, sizeof(metric), "  %s %.3g", name.c_str(), value);
    text += metric;
  }
  std::lock_guard<std::recursive_mutex> lock(mu_);
  if (live_) {
    std::fprintf(stderr, "\r\033[K%s", text.c_str());
    std::fflush(stderr);
    live_line_shown_ = true;
  } else {
    Human(text);
  }
}

void ProgressReporter::Epoch(int64_t epoch, int64_t epochs, double train_loss, double seconds,
                             const nlohmann::json& metrics, const std::string& summary) {
  if (options_.rank != 0) return;
  const nlohmann::json event = {{"event", "epoch"},   {"epoch", epoch + 1},
                                {"epochs", epochs},   {"train_loss", Number(train_loss)},
                                {"seconds", seconds}, {"metrics", metrics}};
  nlohmann::json recorded = event;
  recorded["eval"] = metrics;  // the key of metrics.jsonl's earlier form
  Record(std::move(recorded));
  if (tensorboard_ != nullptr) {
    std::vector<std::pair<std::string, double>> scalars = {{"epoch/train_loss", train_loss},
                                                           {"epoch/seconds", seconds}};
    for (const auto& [name, value] : metrics.items()) {
      if (value.is_number()) scalars.emplace_back("validation/" + name, value.get<double>());
    }
    Scalars(scalars, last_step_);
    FlushTensorBoard();
  }
  Emit(event);
  char line[160];
  std::snprintf(line, sizeof(line), "epoch %lld/%lld  train loss %.4f  (%.1f s)  eval: ",
                static_cast<long long>(epoch + 1), static_cast<long long>(epochs), train_loss,
                seconds);
  Human(line + summary);
}

void ProgressReporter::Checkpoint(const std::string& path, int64_t global_step) {
  if (options_.rank != 0) return;
  Emit({{"event", "checkpoint"}, {"path", path}, {"step", global_step}});
}

void ProgressReporter::Finished(const nlohmann::json& summary) {
  if (options_.rank == 0) Record({{"event", "finished"}, {"summary", summary}});
  if (tensorboard_ != nullptr && summary.contains("test") && summary["test"].is_object()) {
    std::vector<std::pair<std::string, double>> scalars;
    for (const auto& [name, value] : summary["test"].items()) {
      if (value.is_number()) scalars.emplace_back("test/" + name, value.get<double>());
    }
    Scalars(scalars, last_step_);
    FlushTensorBoard();
  }
  Emit({{"event", "finished"}, {"summary", options_.rank == 0 ? summary : nlohmann::json()}});
}

void ProgressReporter::Failed(const std::string& message, int exit_code, int blamed_rank) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  Emit({{"event", "failed"},
        {"message", message},
        {"exit_code", exit_code},
        {"blamed_rank", blamed_rank}});
  ClearLiveLine();
  // Errors are printed by every rank: the failing one may not be rank 0.
  std::fprintf(stderr, "[%s] rank %d: error: %s\n", options_.job.c_str(), options_.rank,
               message.c_str());
  std::fflush(stderr);
}

void ProgressReporter::Warning(const std::string& message, const std::vector<int>& ranks) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  Emit({{"event", "warning"}, {"message", message}, {"ranks", ranks}});
  ClearLiveLine();
  // Printed by every rank that sees it, like errors: rank 0 may be the silent one.
  std::fprintf(stderr, "[%s] rank %d: warning: %s\n", options_.job.c_str(), options_.rank,
               message.c_str());
  std::fflush(stderr);
}

}  // namespace dtrain::trainer
