// `dtrain plot JOB|RUN_DIR [more...] [--array ID] --out PREFIX`: training curves from runs'
// metrics.jsonl as PREFIX.svg and PREFIX.png: the training loss and throughput per step and each
// validation metric per epoch, several runs overlaid to compare them. A JOB id is asked of the
// coordinator for its run directory (GetJob: the output_dir its launch recorded); a RUN_DIR needs
// no coordinator; --array ID adds every trial of a sweep that has started (ListJobs). Never links
// LibTorch: drawing is cairo's.
#ifndef DTRAIN_RUNTIME_CLI_PLOT_COMMAND_H_
#define DTRAIN_RUNTIME_CLI_PLOT_COMMAND_H_

#include <map>
#include <string>
#include <vector>

#include "dtrain/v1/coordinator.grpc.pb.h"
#include "runtime/cli/client_commands.h"
#include "runtime/cli/plot_data.h"
#include "runtime/cli/plot_render.h"

namespace CLI {
class App;
}

namespace dtrain::cli {

// At most this many runs in one figure: beyond it the palette repeats and legends cover curves.
constexpr size_t kMaxPlotRuns = 10;

struct PlotOptions {
  std::vector<std::string> runs;  // job ids or run directories
  int64_t array_id = 0;           // also every started job of this job array (a sweep's trials)
  std::string out_prefix = "plot";
};

// Registers `plot` on `app`, filling `options` when it is parsed.
CLI::App* AddPlotCommand(CLI::App* app, PlotOptions* options);

// The run directory of job `job` from the output_dir its launch recorded in its history.
StatusOr<std::string> JobRunDirectory(const v1::Job& job);

// The legend's names for the runs given as `args` (job ids or run directories): a job is
// "job ID (NAME)" from `job_names`, a directory its last path component, lengthened by its
// parents until no two directories share a name ("a/run", "b/run"); the same argument given twice
// is numbered. Each run needs its own name, because its colour is looked up by it.
std::vector<std::string> RunLabels(const std::vector<std::string>& args,
                                   const std::map<std::string, std::string>& job_names);

// The panels of a figure comparing `runs`: loss, each validation metric, throughput.
std::vector<PlotPanel> CurvePanels(const std::vector<RunCurves>& runs);

// Writes the figure; prints the two paths. Exit codes as the other commands: 2 for a missing or
// malformed run directory or an unwritable output, 3/5 when the coordinator fails or has no
// such job. `stub` is only called for job ids.
int RunPlot(const PlotOptions& options, v1::Coordinator::StubInterface* stub,
            const CommandEnv& env);

}  // namespace dtrain::cli

#endif  // DTRAIN_RUNTIME_CLI_PLOT_COMMAND_H_
