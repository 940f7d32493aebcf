#include "runtime/cli/plot_command.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <filesystem>
#include <set>

namespace dtrain::cli {
namespace {

namespace fs = std::filesystem;

// How the supervisor records a launch's run directory in the transition's reason.
constexpr char kOutputDirMarker[] = "; output_dir ";

bool IsJobId(const std::string& text) {
  return !text.empty() && text.size() <= 18 &&
         text.find_first_not_of("0123456789") == std::string::npos;
}

}  // namespace

CLI::App* AddPlotCommand(CLI::App* app, PlotOptions* options) {
  CLI::App* cmd = app->add_subcommand(
      "plot",
      "draw training curves (loss, validation metrics per epoch, throughput) of jobs or run "
      "directories into PREFIX.svg and PREFIX.png; several runs are overlaid");
  cmd->add_option("runs", options->runs, "job ids or run directories (holding metrics.jsonl)");
  cmd->add_option("--array", options->array_id,
                  "also every started job of this job array (the trials of a sweep), overlaid")
      ->check(CLI::PositiveNumber);
  cmd->add_option("-o,--out", options->out_prefix, "output path without extension")
      ->capture_default_str();
  return cmd;
}

StatusOr<std::string> JobRunDirectory(const v1::Job& job) {
  for (int i = job.history_size() - 1; i >= 0; --i) {
    const std::string& reason = job.history(i).reason();
    const size_t at = reason.rfind(kOutputDirMarker);
    if (at != std::string::npos) return reason.substr(at + sizeof(kOutputDirMarker) - 1);
  }
  return NotFound("job " + std::to_string(job.job_id()) +
                  " has no run directory yet (it has not been launched)");
}

std::vector<std::string> RunLabels(const std::vector<std::string>& args,
                                   const std::map<std::string, std::string>& job_names) {
  std::vector<std::vector<std::string>> parts(args.size());  // a directory's components, last first
  std::vector<size_t> used(args.size(), 1);
  for (size_t i = 0; i < args.size(); ++i) {
    if (job_names.count(args[i]) != 0) continue;
    const fs::path normal = fs::path(args[i]).lexically_normal();
    for (const auto& part : normal) {
      if (!part.empty() && part != "/") parts[i].insert(parts[i].begin(), part.string());
    }
    if (parts[i].empty()) parts[i].push_back(normal.string());
  }
  auto label_of = [&](size_t i) {
    if (job_names.count(args[i]) != 0) {
      return "job " + args[i] + " (" + job_names.at(args[i]) + ")";
    }
    std::string label;
    for (size_t k = used[i]; k-- > 0;) label += (label.empty() ? "" : "/") + parts[i][k];
    return label;
  };
  // Lengthen every directory name shared with another until none is, or there is nothing left
  // to add: then the two are the same directory, numbered below.
  for (bool grew = true; grew;) {
    grew = false;
    std::map<std::string, std::vector<size_t>> by_label;
    for (size_t i = 0; i < args.size(); ++i) by_label[label_of(i)].push_back(i);
    for (const auto& [label, owners] : by_label) {
      if (owners.size() < 2) continue;
      for (size_t i : owners) {
        if (used[i] < parts[i].size()) {
          ++used[i];
          grew = true;
        }
      }
    }
  }
  std::vector<std::string> labels;
  std::map<std::string, int> seen;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string label = label_of(i);
    const int n = ++seen[label];
    if (n > 1) label += " (" + std::to_string(n) + ")";
    labels.push_back(label);
  }
  return labels;
}

std::vector<PlotPanel> CurvePanels(const std::vector<RunCurves>& runs) {
  std::vector<PlotPanel> panels;
  PlotPanel loss{"training loss", "step", {}};
  PlotPanel throughput{"throughput (samples/s, all ranks)", "step", {}};
  std::set<std::string> metrics;
  for (const RunCurves& run : runs) {
    loss.series.push_back({run.label, run.loss});
    throughput.series.push_back({run.label, run.samples_per_s});
    for (const auto& [name, curve] : run.eval) metrics.insert(name);
  }
  panels.push_back(std::move(loss));
  for (const std::string& name : metrics) {
    PlotPanel panel{"validation " + name, "epoch", {}, /*integer_x=*/true};
    for (const RunCurves& run : runs) {
      auto it = run.eval.find(name);
      panel.series.push_back({run.label, it == run.eval.end() ? Curve() : it->second});
    }
    panels.push_back(std::move(panel));
  }
  panels.push_back(std::move(throughput));
  return panels;
}

int RunPlot(const PlotOptions& options, v1::Coordinator::StubInterface* stub,
            const CommandEnv& env) {
  std::vector<std::string> args = options.runs;
  std::vector<std::string> dirs;
  std::map<std::string, std::string> job_names;
  if (options.array_id != 0) {
    // The array's trials in index order; those not started yet have no curves to draw.
    std::string page_token;
    std::vector<std::string> waiting;
    for (;;) {
      v1::ListJobsRequest request;
      request.set_array_id(options.array_id);
      request.set_view(v1::JOB_VIEW_BASIC);
      request.set_page_size(static_cast<int>(kMaxListPageSize));
      request.set_page_token(page_token);
      v1::ListJobsResponse response;
      auto context = NewCallContext(env, /*unary=*/true);
      const grpc::Status status = stub->ListJobs(context.get(), request, &response);
      if (!status.ok()) {
        *env.err << "dtrain plot: array " << options.array_id << ": " << status.error_message()
                 << "\n";
        return ExitCodeForRpcError(status.error_code());
      }
      for (const v1::Job& job : response.jobs()) {
        const std::string id = std::to_string(job.job_id());
        if (job.output_dir().empty() || !fs::exists(fs::path(job.output_dir()) / "metrics.jsonl")) {
          waiting.push_back(id);
          continue;
        }
        args.push_back(id);
        dirs.push_back(job.output_dir());
        job_names[id] = job.name() + "[" + std::to_string(job.array_index()) + "]";
      }
      if (response.next_page_token().empty() || response.next_page_token() == page_token) break;
      page_token = response.next_page_token();
    }
    if (args.size() == options.runs.size()) {
      *env.err << "dtrain plot: array " << options.array_id << " has no started job"
               << (waiting.empty() ? " (no such array)" : "") << "\n";
      return waiting.empty() ? kExitNotFound : kExitUsage;
    }
    if (!waiting.empty()) {
      *env.err << "dtrain plot: array " << options.array_id << ": " << waiting.size()
               << " job(s) not started yet, left out\n";
    }
  }
  if (args.empty()) {
    *env.err << "dtrain plot: give job ids, run directories or --array ID\n";
    return kExitUsage;
  }
  if (args.size() > kMaxPlotRuns) {
    *env.err << "dtrain plot: " << args.size() << " runs; at most " << kMaxPlotRuns
             << " fit one figure (give the job ids of the trials to compare)\n";
    return kExitUsage;
  }
  for (const std::string& run : options.runs) {
    std::string dir = run;
    if (!fs::is_directory(run) && IsJobId(run)) {
      v1::GetJobRequest request;
      request.set_job_id(std::stoll(run));
      v1::Job job;
      auto context = NewCallContext(env, /*unary=*/true);
      const grpc::Status status = stub->GetJob(context.get(), request, &job);
      if (!status.ok()) {
        *env.err << "dtrain plot: job " << run << ": " << status.error_message() << "\n";
        return ExitCodeForRpcError(status.error_code());
      }
      StatusOr<std::string> found = JobRunDirectory(job);
      if (!found.ok()) {
        *env.err << "dtrain plot: " << found.status().message() << "\n";
        return kExitUsage;
      }
      dir = *found;
      job_names[run] = job.name();
    }
    dirs.push_back(dir);
  }
  // The array's trials were appended after the runs given; their directories came with them.
  std::rotate(dirs.begin(),
              dirs.begin() + static_cast<std::ptrdiff_t>(args.size() - options.runs.size()),
              dirs.end());
  const std::vector<std::string> labels = RunLabels(args, job_names);
  std::vector<RunCurves> runs;
  for (size_t i = 0; i < dirs.size(); ++i) {
    StatusOr<RunCurves> curves = ReadRunCurves(dirs[i], labels[i]);
    if (!curves.ok()) {
      *env.err << "dtrain plot: " << curves.status().message() << "\n";
      return kExitUsage;
    }
    runs.push_back(std::move(curves).value());
  }
  StatusOr<RenderedFiles> files = RenderPanels(CurvePanels(runs), options.out_prefix);
  if (!files.ok()) {
    *env.err << "dtrain plot: " << files.status().message() << "\n";
    return kExitUsage;
  }
  *env.out << "wrote " << files->svg << " and " << files->png << "\n";
  return kExitOk;
}

}  // namespace dtrain::cli
