// dtrain-worker's command line: one process per rank.
//   mpirun -np N dtrain-worker job.yaml [--resume] [--set train.epochs=3 ...]
//   dtrain-worker --validate job.yaml
//   dtrain-worker gen-day-night --out DIR [--count N] [--size PX] [--seed S]
//   dtrain-worker gen-trigger-word --out DIR ...  (tasks/trigger_word/worker_commands.h)
//   dtrain-worker gen-detection-scenes / detect-objects ...  (tasks/yolo/worker_commands.h)
// Exit codes: 0 success, 1 training failed, 2 bad usage or invalid spec, 3 non-finite loss.
#include "workers/trainer/worker_main.h"

#include <mpi.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <iostream>
#include <limits>
#include <map>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include "runtime/comm/mpi_communicator.h"
#include "runtime/data/images/day_night_generator.h"
#include "runtime/spec/job_spec.h"
#include "runtime/spec/overrides.h"
#include "runtime/spec/resource_limits.h"
#include "workers/trainer/allocator_tuning.h"
#include "workers/trainer/progress.h"
#include "workers/trainer/run_directories.h"
#include "workers/trainer/task_registry.h"
#ifdef DTRAIN_HAVE_AUDIO
#include "workers/trainer/tasks/trigger_word/worker_commands.h"
#endif
#include "workers/trainer/tasks/yolo/worker_commands.h"
#include "workers/trainer/trainer.h"

#ifdef DTRAIN_HAVE_NCCL
#include "runtime/comm/nccl_communicator.h"
#endif

namespace {

constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
constexpr int kExitNonFinite = 3;

int RunDayNightGenerator(const dtrain::data::DayNightOptions& options) {
  auto report = dtrain::data::GenerateDayNight(options);
  if (!report.ok()) {
    std::fprintf(stderr, "dtrain-worker gen-day-night: %s\n", report.status().ToString().c_str());
    return kExitFailed;
  }
  std::printf("wrote %d day + %d night images (%d dawn/dusk hard cases, %d real photos) to %s\n",
              report->day, report->night, report->hard_cases, report->photos_used,
              options.out_dir.c_str());
  return 0;
}

int Train(const std::string& job_file, const std::map<std::string, std::string>& overrides,
          const dtrain::JobSpec& spec, bool resume, dtrain::trainer::HumanProgress human,
          bool json_lines, int64_t stop_after, int* argc, char*** argv) {
  using namespace dtrain;
  trainer::KeepFreedMemoryForReuse();
  auto env_or = comm::MpiEnvironment::Init(argc, argv);
  if (!env_or.ok()) {
    std::fprintf(stderr, "dtrain-worker: %s\n", env_or.status().ToString().c_str());
    return kExitFailed;
  }
  std::unique_ptr<comm::MpiEnvironment> env = std::move(env_or).value();
  const int world = env->world_size();

  // The spec was held to the static caps; now to this host: its memory shared by the ranks on
  // it and, on rank 0 (which generates the data), the free disk where data.path is written.
  // Checked before anything is written.
  const ResourceLimits host_limits = HostResourceLimits(
      env->local_size(), env->world_rank() == 0 ? spec.data.path : std::string());
  const Status fits_host = LoadJobSpecWithOverrides(job_file, overrides, host_limits).status();

  // One run id for every rank: rank 0's, broadcast before anything is reported.
  char run_id[64] = {};
  if (env->world_rank() == 0) {
    std::snprintf(run_id, sizeof(run_id), "%s", trainer::NewRunId().c_str());
  }
  MPI_Bcast(run_id, sizeof(run_id), MPI_CHAR, 0, MPI_COMM_WORLD);
  run_id[sizeof(run_id) - 1] = '\0';

  trainer::ProgressOptions progress_options;
  progress_options.job = spec.name;
  progress_options.run_id = run_id;
  progress_options.rank = env->world_rank();
  progress_options.world_size = world;
  progress_options.human = human;
  progress_options.json_lines = json_lines;
  // Rank 0 writes the run's files: it claims their directories (locks them for this run, and a
  // fresh run clears what an earlier one left) before metrics.jsonl is opened.
  std::optional<trainer::RunDirectories> directories;
  Status claimed = Status::Ok();
  if (env->world_rank() == 0 && fits_host.ok()) {
    StatusOr<trainer::RunDirectories> claim =
        trainer::RunDirectories::Claim(spec.output_dir, spec.checkpoint.dir, resume);
    if (claim.ok()) {
      directories.emplace(std::move(claim).value());
      progress_options.metrics_path = spec.output_dir + "/metrics.jsonl";
      progress_options.tensorboard_dir = spec.output_dir + "/" + trainer::kTensorBoardSubdir;
    } else {
      claimed = claim.status();
    }
  }
  trainer::ProgressReporter progress(progress_options);

  // The communicators in use, so a failure is blamed on the rank their liveness monitor names
  // rather than on this rank, which only noticed.
  std::vector<const comm::Communicator*> communicators;
  auto fail = [&](const Status& status) {
    const int code =
        status.code() == StatusCode::kAborted && status.message().rfind("loss became", 0) == 0
            ? kExitNonFinite
            : (status.code() == StatusCode::kInvalidArgument ? kExitUsage : kExitFailed);
    // Failed by itself, unless a communicator failed: then whom it names (-1: cannot tell).
    bool communicator_failed = false;
    int named = -1;
    for (const comm::Communicator* c : communicators) {
      if (!c->failed()) continue;
      communicator_failed = true;
      named = std::max(named, c->blamed_rank());
    }
    const int blamed = communicator_failed ? named : env->world_rank();
    progress.Failed(status.ToString(), code, blamed);
    // A failure seen by one rank only would leave the others blocked in a collective: end the
    // whole job. With one rank a plain exit is enough.
    if (world > 1) comm::MpiEnvironment::Abort(code);
    return code;
  };

  if (!fits_host.ok()) return fail(fits_host);
  if (!claimed.ok()) return fail(claimed);

  const auto timeout =
      std::chrono::milliseconds(static_cast<int64_t>(spec.distributed.timeout_s) * 1000);
  auto mpi_or = comm::MpiCommunicator::Create(MPI_COMM_WORLD, timeout);
  if (!mpi_or.ok()) return fail(mpi_or.status());
  std::unique_ptr<comm::MpiCommunicator> mpi = std::move(mpi_or).value();
  communicators.push_back(mpi.get());
  if (mpi->liveness()) {
    mpi->liveness()->SetWarningHandler(
        [&progress](const std::string& message, const std::vector<int>& ranks) {
          progress.Warning(message, ranks);
        });
  }

  comm::Communicator* communicator = mpi.get();
  const bool cuda = spec.distributed.device == DeviceKind::kCuda;
  const bool want_nccl = spec.distributed.backend == CommBackend::kNccl ||
                         (spec.distributed.backend == CommBackend::kAuto && cuda);
#ifdef DTRAIN_HAVE_NCCL
  std::unique_ptr<comm::NcclCommunicator> nccl;
  if (want_nccl) {
    auto nccl_or =
        comm::NcclCommunicator::Create(*mpi, env->local_rank(), timeout, mpi->liveness());
    if (!nccl_or.ok()) return fail(nccl_or.status());
    nccl = std::move(nccl_or).value();
    communicators.push_back(nccl.get());
    communicator = nccl.get();
  }
#else
  if (want_nccl) {
    return fail(FailedPrecondition(
        "distributed.backend/device asks for NCCL but this dtrain-worker was built without CUDA + "
        "NCCL (configure with -DDTRAIN_WITH_CUDA=ON on a machine that has them)"));
  }
#endif
  if (cuda && spec.distributed.backend == CommBackend::kMpi) {
    return fail(
        InvalidArgument("distributed.backend mpi works on CPU tensors only; use nccl or "
                        "auto with device cuda"));
  }

  trainer::TrainOptions options;
  options.resume = resume;
  options.local_rank = env->local_rank();
  options.local_size = env->local_size();
  options.stop_after_steps = stop_after;
  // A worker never aborts on a user's value: whatever escapes the trainer becomes a failed run.
  StatusOr<trainer::TrainOutcome> outcome = Internal("training did not run");
  try {
    outcome = trainer::RunTraining(spec, *mpi, *communicator, options, progress);
  } catch (const std::bad_alloc&) {
    outcome = Status(StatusCode::kResourceExhausted,
                     "out of memory while training; lower train.batch_size, data.resolution or "
                     "the model's size");
  } catch (const std::exception& e) {
    outcome = Internal(std::string("training failed: ") + e.what());
  }
  if (!outcome.ok()) return fail(outcome.status());
  progress.Finished(outcome->summary);
  if (env->world_rank() == 0) {
    progress.Info("summary written to " + spec.output_dir + "/summary.json");
  }
  return 0;
}

}  // namespace

namespace dtrain::trainer {

int WorkerMain(int argc, char** argv) {
  CLI::App app{
      "dtrain-worker: trains one job's model data-parallel; run one process per rank "
      "under mpirun"};
  app.require_subcommand(0, 1);
  std::string job_file;
  bool validate = false;
  bool resume = false;
  std::string progress = "auto";
  bool no_json = false;
  int64_t stop_after = -1;
  std::vector<std::string> sets;
  app.add_option("job", job_file, "job spec (YAML), see jobs/README.md");
  app.add_option("--set", sets,
                 "override a spec field: key=value (repeatable), as `dtrain submit --set`")
      ->allow_extra_args(false);
  app.add_flag("--validate", validate, "check the spec and exit (0 when valid)");
  app.add_flag("--resume", resume, "continue from the newest checkpoint in checkpoint.dir");
  app.add_option("--progress", progress, "human progress on stderr (rank 0)")
      ->check(CLI::IsMember({"auto", "tty", "plain", "none"}));
  app.add_flag("--no-json-progress", no_json, "do not print JSON progress lines on stdout");
  app.add_option("--stop-after-steps", stop_after,
                 "stop (checkpointing if configured) after this many optimizer steps in total")
      ->check(CLI::Range(int64_t{0}, std::numeric_limits<int64_t>::max()));

  dtrain::data::DayNightOptions gen;
  CLI::App* gen_cmd = app.add_subcommand(
      "gen-day-night", "write a labelled day/night ImageFolder of synthetic scenes");
  gen_cmd->add_option("--out", gen.out_dir, "output directory (must not exist)")->required();
  gen_cmd->add_option("--count", gen.count, "number of images")->check(CLI::Range(2, 10000000));
  gen_cmd->add_option("--size", gen.size, "image side in pixels")->check(CLI::Range(16, 4096));
  // CLI11 would wrap "-1" around to 2^64 - 1: only digits are a seed.
  const CLI::Validator kDigits(
      [](std::string& text) {
        const bool digits = !text.empty() && text.find_first_not_of("0123456789") == text.npos;
        return digits ? std::string() : "expected a non-negative integer, got '" + text + "'";
      },
      "UINT64");
  gen_cmd->add_option("--seed", gen.seed, "random seed")->check(kDigits);
  gen_cmd->add_option("--photos", gen.photo_dir, "folder of real photos used as landscapes");

#ifdef DTRAIN_HAVE_AUDIO
  TriggerWordCommands trigger_word(app);
#endif
  YoloCommands yolo(app);

  CLI11_PARSE(app, argc, argv);
  if (gen_cmd->parsed()) return RunDayNightGenerator(gen);
  if (std::optional<int> code = yolo.Run()) return *code;
#ifdef DTRAIN_HAVE_AUDIO
  if (std::optional<int> code = trigger_word.Run()) return *code;
#endif
  if (job_file.empty()) {
    std::fprintf(stderr, "dtrain-worker: a job spec is required\n%s", app.help().c_str());
    return kExitUsage;
  }
  auto overrides = dtrain::ParseOverrideArguments(sets);
  if (!overrides.ok()) {
    std::fprintf(stderr, "dtrain-worker: %s\n", overrides.status().message().c_str());
    return kExitUsage;
  }
  auto spec =
      dtrain::LoadJobSpecWithOverrides(job_file, *overrides, dtrain::StaticResourceLimits());
  if (!spec.ok()) {
    std::fprintf(stderr, "%s\n", spec.status().message().c_str());
    return kExitUsage;
  }
  if (TaskRegistry::Global().Find(spec->task) == nullptr) {
    std::fprintf(stderr, "%s: task '%s' has no trainer implementation in this dtrain-worker\n",
                 job_file.c_str(), spec->task.c_str());
    return kExitUsage;
  }
  if (validate) {
    std::printf("%s: valid (%s job '%s')\n", job_file.c_str(), spec->task.c_str(),
                spec->name.c_str());
    return 0;
  }
  const auto human = progress == "tty"     ? dtrain::trainer::HumanProgress::kTty
                     : progress == "plain" ? dtrain::trainer::HumanProgress::kPlain
                     : progress == "none"  ? dtrain::trainer::HumanProgress::kNone
                                           : dtrain::trainer::HumanProgress::kAuto;
  return Train(job_file, *overrides, *spec, resume, human, !no_json, stop_after, &argc, &argv);
}

}  // namespace dtrain::trainer
