// dtrain: the command-line tool of the dtrain coordinator and embedding store.
//   dtrain coordinator --insecure-local-only          run a coordinator on 127.0.0.1:7070
//   dtrain submit jobs/day_night.yaml --follow        queue a job and follow it to its end
//   dtrain list | status ID | logs ID -f | cancel ID | hold ID | release ID | priority ID N |
//   cluster
//   dtrain embed-store --insecure-local-only          run an embedding store on 127.0.0.1:7071
//   dtrain faces enroll alice a.jpg b.jpg | verify alice c.jpg | identify c.jpg | list | ...
// Exit codes: see kExitCodesHelp below (runtime/cli/client_commands.h and faces_commands.h
// define them).
#include "runtime/cli/dtrain_main.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "runtime/cli/client_commands.h"
#include "runtime/cli/config.h"
#include "runtime/cli/faces_commands.h"
#include "runtime/cli/plot_command.h"
#include "runtime/common/utf8.h"
#include "runtime/coordinator/server.h"

#ifndef DTRAIN_VERSION
#define DTRAIN_VERSION "unknown"
#endif

namespace {

namespace cli = dtrain::cli;

constexpr char kExitCodesHelp[] =
    "Client settings: flag > environment (DTRAIN_ADDRESS, DTRAIN_TOKEN, DTRAIN_TOKEN_FILE) >\n"
    "config file ($DTRAIN_CONFIG or ~/.config/dtrain/config.yaml: address, token_file, tls_ca)\n"
    "> default (127.0.0.1:7070, no token, no TLS).\n"
    "\n"
    "Exit codes:\n"
    "  0  success\n"
    "  1  the followed job failed (submit --follow)\n"
    "  2  bad usage or invalid input (spec, --set, token or config file)\n"
    "  3  coordinator error or coordinator unreachable\n"
    "  4  the followed job was cancelled (submit --follow)\n"
    "  5  no such job\n"
    "  6  refused in the job's current state (e.g. cancel of a finished job)\n"
    "  130  interrupted (Ctrl-C on submit --follow: the job keeps running)";

// The options every client command takes; `flags` is shared since only one command runs.
// `address_help` says whose address --address is (the coordinator's or the embedding store's).
void AddClientOptions(CLI::App* command, cli::ClientFlags* flags, const std::string& address_help) {
  command->add_option("--address", flags->address, address_help);
  auto* token = command->add_option(
      "--token", flags->token,
      "bearer token (env DTRAIN_TOKEN); visible to other users in ps, prefer --token-file");
  auto* token_file = command->add_option(
      "--token-file", flags->token_file,
      "file holding the bearer token, mode 0600 (env DTRAIN_TOKEN_FILE, config 'token_file')");
  token->excludes(token_file);
  command->add_option("--tls-ca", flags->tls_ca,
                      "PEM CA certificates; use TLS (config 'tls_ca'; default plaintext)");
  command->add_flag("--json", flags->json, "machine-readable output: one JSON value on stdout");
  command->add_option("--timeout", flags->timeout_s, "seconds to wait for each unary call")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
}

void AddCoordinatorClientOptions(CLI::App* command, cli::ClientFlags* flags) {
  AddClientOptions(command, flags,
                   "coordinator host:port (env DTRAIN_ADDRESS, config 'address'; default " +
                       std::string(cli::kDefaultAddress) + ")");
}

constexpr char kFacesHelp[] =
    "Store settings: flag > environment (DTRAIN_STORE_ADDRESS, DTRAIN_TOKEN, DTRAIN_TOKEN_FILE)\n"
    "> config file (store_address, token_file, tls_ca) > default (127.0.0.1:7071).\n"
    "Distances are Euclidean between embeddings; the store decides at its threshold.\n"
    "\n"
    "Exit codes:\n"
    "  0  success (verify: same person; identify: recognised)\n"
    "  1  verify: not the same person; identify: unknown face\n"
    "  2  bad usage or invalid input (unreadable image, no face found, not a JPEG/PNG, ...)\n"
    "  3  store error or store unreachable (UNAUTHENTICATED included)\n"
    "  5  no such person or face\n"
    "  6  refused in the store's current state (e.g. face detection is disabled)";

void AddStoreClientOptions(CLI::App* command, cli::ClientFlags* flags) {
  AddClientOptions(command, flags,
                   "embedding store host:port (env DTRAIN_STORE_ADDRESS, config "
                   "'store_address'; default " +
                       std::string(cli::kDefaultStoreAddress) + ")");
}

std::string NextToSelf(const std::string& name) {
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? name : (self.parent_path() / name).string();
}

// `dtrain embed-store ARGS...`: replaces this process with dtrain-embed-store ARGS... (argv, no
// shell). The store links LibTorch, which the dtrain CLI never does.
int ExecEmbedStore(const std::vector<std::string>& args) {
  const std::string program = NextToSelf("dtrain-embed-store");
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(program.c_str()));
  for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  std::fflush(nullptr);
  ::execv(program.c_str(), argv.data());
  std::fprintf(stderr,
               "dtrain: cannot run '%s': %s (it is built with LibTorch and gRPC next to dtrain)\n",
               program.c_str(), std::strerror(errno));
  return cli::kExitUsage;
}

// Person ids travel in protocol buffer strings, which must be UTF-8.
const CLI::Validator kUtf8Text([](std::string& text) { return dtrain::DescribeInvalidUtf8(text); },
                               "TEXT", "UTF-8 text");

CLI::Option* AddJobId(CLI::App* command, int64_t* job_id) {
  return command->add_option("id", *job_id, "job id")
      ->check(CLI::Validator(cli::CheckJobId, "ID", "job id"));
}

CLI::App* AddCoordinator(CLI::App* app, dtrain::coordinator::CoordinatorConfig* config) {
  CLI::App* cmd = app->add_subcommand(
      "coordinator", "run the coordinator: gRPC API, durable job queue, gang scheduler, launcher");
  cmd->add_option("--listen", config->listen_address,
                  "host:port to serve on (port 0 picks a free one)")
      ->capture_default_str();
  cmd->add_option("--state-dir", config->state_dir, "jobs.db and per-job specs and logs")
      ->capture_default_str();
  cmd->add_option("--cluster", config->cluster_file,
                  "cluster YAML (hosts and slots, launcher settings); default: this machine, one "
                  "slot per core");
  cmd->add_option("--launcher", config->launcher,
                  "launcher backend that runs jobs (default: the cluster file's, else "
                  "local-mpirun)");
  auto* token_file = cmd->add_option("--token-file", config->security.token_file,
                                     "bearer-token secret every client must present (mode 0600)");
  auto* insecure = cmd->add_flag("--insecure-local-only", config->security.insecure_local_only,
                                 "no token and no TLS; only loopback listen addresses");
  auto* cert = cmd->add_option("--tls-cert", config->security.tls_cert_file, "PEM certificate");
  auto* key = cmd->add_option("--tls-key", config->security.tls_key_file, "PEM private key");
  cert->needs(key);
  key->needs(cert);
  insecure->excludes(token_file)->excludes(cert)->excludes(key);
  cmd->add_option("--allowed-root", config->allowed_roots,
                  "directory that spec paths must lie under (repeatable; default: the working "
                  "and state directories)")
      ->allow_extra_args(false);
  cmd->add_option("--worker", config->worker_path,
                  "local-mpirun launcher: dtrain-worker binary (default: next to dtrain)");
  cmd->add_option("--shim", config->shim_path,
                  "local-mpirun launcher: dtrain-job-shim binary (default: next to dtrain)");
  cmd->add_option("--mpirun", config->mpirun_path,
                  "local-mpirun launcher: mpirun binary (default: /usr/bin/mpirun)");
  cmd->add_option("--http-listen", config->http_listen_address,
                  "host:port for the web dashboard and Prometheus /metrics over HTTP, same token "
                  "(default: off)");
  cmd->add_option("--http-port-file", config->http_port_file,
                  "write the bound HTTP host:port here once listening");
  cmd->add_option("--port-file", config->port_file,
                  "write the bound host:port here once listening");
  cmd->add_option_function<std::string>(
         "--retain-finished",
         [config](const std::string& text) {
           config->retain_finished = std::chrono::milliseconds(*cli::ParseDurationMs(text));
         },
         "remove the log lines, progress events and attempt files of jobs that finished longer "
         "ago than this (90m, 12h, 30d); their record, history and last lines stay (default: "
         "keep everything)")
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            const std::optional<int64_t> ms = cli::ParseDurationMs(text);
            if (!ms || *ms <= 0) return "expected a duration above 0 such as 90m, 12h or 30d";
            return "";
          },
          "DURATION", "duration"));
  return cmd;
}

}  // namespace

namespace dtrain::cli {

int DtrainMain(int argc, char** argv) {
  CLI::App app{"dtrain: run a coordinator, submit training jobs to it and follow them"};
  app.footer(kExitCodesHelp);  // before the subcommands, which inherit it
  app.require_subcommand(1);
  app.set_version_flag("--version", "dtrain " DTRAIN_VERSION);

  dtrain::coordinator::CoordinatorConfig coordinator_config;
  CLI::App* coordinator_cmd = AddCoordinator(&app, &coordinator_config);

  cli::ClientFlags flags;

  cli::SubmitOptions submit;
  CLI::App* submit_cmd = app.add_subcommand("submit", "queue a job spec (YAML)");
  submit_cmd->add_option("job", submit.job_file, "job spec, see jobs/README.md")->required();
  submit_cmd->add_option("--ranks", submit.ranks, "ranks (slots) to run on; default: the spec's")
      ->check(CLI::Range(1, 65536));
  submit_cmd->add_option("--priority", submit.priority, "higher runs first (default 0)")
      ->check(CLI::Range(-1000, 1000));
  submit_cmd
      ->add_option("--max-attempts", submit.max_attempts,
                   "total tries, the first included; default: the spec's")
      ->check(CLI::Range(1, 100));
  submit_cmd->add_option("--set", submit.sets, "override a spec field: key=value (repeatable)")
      ->allow_extra_args(false);
  submit_cmd->add_flag("-f,--follow", submit.follow,
                       "follow the job to its end; exit 0 succeeded, 1 failed, 4 cancelled");
  submit_cmd->add_flag("--logs", submit.logs, "with --follow: print the job's log lines too")
      ->needs(submit_cmd->get_option("--follow"));
  submit_cmd
      ->add_option("--after", submit.after,
                   "start only once these jobs SUCCEEDED: ID[,ID...] (repeatable, at most 64)")
      ->delimiter(',')
      ->allow_extra_args(false)
      ->check(CLI::Validator(cli::CheckJobId, "ID", "job id"));
  submit_cmd->add_option("--sweep", submit.sweep,
                         "sweep file (grid or random over spec fields): one job per trial");
  submit_cmd->add_flag("--hold", submit.hold, "queue the job held: it starts after dtrain release");
  submit.owner = cli::DefaultOwner(std::getenv("USER"));
  submit_cmd
      ->add_option("--owner", submit.owner,
                   "who the job is for: 1 to 64 of A-Z a-z 0-9 . _ @ - (default: $USER)")
      ->check(CLI::Validator(
          [](std::string& text) {
            return cli::DefaultOwner(text.c_str()) == text
                       ? std::string()
                       : std::string("expected 1 to 64 of A-Z a-z 0-9 . _ @ -");
          },
          "OWNER", "owner"));
  AddCoordinatorClientOptions(submit_cmd, &flags);

  int64_t status_id = 0;
  CLI::App* status_cmd =
      app.add_subcommand("status", "one job in detail; without an id, the job list");
  CLI::Option* status_id_opt = AddJobId(status_cmd, &status_id);
  AddCoordinatorClientOptions(status_cmd, &flags);

  cli::ListOptions list;
  CLI::App* list_cmd = app.add_subcommand(
      "list", "jobs in a table (or JSON), newest first, filtered by state or name");
  list_cmd->add_option("--state", list.state,
                       "only jobs in this state: pending, running, succeeded, failed, cancelled");
  list_cmd->add_option("--name", list.name, "only jobs whose name matches this glob (mnist-*)")
      ->check(CLI::Validator(
          [](std::string& text) {
            return text.size() > 256 ? std::string("at most 256 bytes")
                                     : dtrain::DescribeInvalidUtf8(text);
          },
          "GLOB", "name glob"));
  list_cmd->add_option("--owner", list.owner, "only jobs of this owner");
  list_cmd->add_option("--array", list.array_id, "only the jobs of this array (a sweep's trials)")
      ->check(CLI::Validator(cli::CheckJobId, "ID", "array id"));
  list_cmd->add_option("--rank-by", list.rank_by,
                       "rank by a metric, higher first (test.accuracy) or lower (loss:min)");
  list_cmd
      ->add_option("--sort", list.sort,
                   "newest or oldest (the coordinator's order), or priority, name, state (of the "
                   "jobs shown)")
      ->capture_default_str()
      ->check(CLI::IsMember({"newest", "oldest", "priority", "name", "state"}));
  list_cmd->add_option("--limit", list.limit, "at most this many jobs (0 = all)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  AddCoordinatorClientOptions(list_cmd, &flags);

  cli::LogsOptions logs;
  CLI::App* logs_cmd =
      app.add_subcommand("logs", "a job's output and progress from the start (or --tail, --since)");
  AddJobId(logs_cmd, &logs.job_id)->required();
  logs_cmd->add_flag("-f,--follow", logs.follow, "keep printing until the job ends");
  logs_cmd->add_option("--tail", logs.tail, "start with the last N events (with --rank: lines)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  logs_cmd->add_option("--since", logs.since,
                       "start with the events of the last 90s, 10m, 2h, 3d, or since an RFC 3339 "
                       "UTC time (2026-12-05T11:00:00Z)");
  CLI::Option* logs_rank =
      logs_cmd
          ->add_option("--rank", logs.rank,
                       "that rank's own output (stdout) of the latest attempt, as it wrote it")
          ->check(CLI::Range(0, 65535));
  logs_cmd->add_flag("--stderr", logs.stderr_stream, "with --rank: the rank's stderr")
      ->needs(logs_rank);
  AddCoordinatorClientOptions(logs_cmd, &flags);

  int64_t cancel_id = 0;
  CLI::App* cancel_cmd = app.add_subcommand("cancel", "stop a pending or running job");
  AddJobId(cancel_cmd, &cancel_id)->required();
  AddCoordinatorClientOptions(cancel_cmd, &flags);

  int64_t hold_id = 0;
  CLI::App* hold_cmd =
      app.add_subcommand("hold", "keep a pending job from starting (it keeps its place)");
  AddJobId(hold_cmd, &hold_id)->required();
  AddCoordinatorClientOptions(hold_cmd, &flags);

  int64_t release_id = 0;
  CLI::App* release_cmd = app.add_subcommand("release", "let a held job start again");
  AddJobId(release_cmd, &release_id)->required();
  AddCoordinatorClientOptions(release_cmd, &flags);

  int64_t priority_id = 0;
  int priority_value = 0;
  CLI::App* priority_cmd = app.add_subcommand("priority", "change a pending job's priority");
  AddJobId(priority_cmd, &priority_id)->required();
  priority_cmd->add_option("priority", priority_value, "-1000 to 1000, higher starts first")
      ->required()
      ->check(CLI::Range(-1000, 1000));
  AddCoordinatorClientOptions(priority_cmd, &flags);

  CLI::App* cluster_cmd = app.add_subcommand("cluster", "slots per host and the queue length");
  AddCoordinatorClientOptions(cluster_cmd, &flags);

  cli::PlotOptions plot;
  AddCoordinatorClientOptions(cli::AddPlotCommand(&app, &plot), &flags);

  // The embedding store: `dtrain embed-store` runs it, `dtrain faces ...` talks to it.
  CLI::App* embed_store_cmd = app.add_subcommand(
      "embed-store",
      "run the embedding store (dtrain-embed-store next to dtrain; every argument is passed on: "
      "dtrain embed-store --help)");
  embed_store_cmd->prefix_command();
  embed_store_cmd->set_help_flag();  // --help goes to dtrain-embed-store

  CLI::App* faces_cmd = app.add_subcommand(
      "faces", "the embedding store: enroll, verify, identify, delete, list and cluster faces");
  faces_cmd->require_subcommand(1);
  faces_cmd->footer(kFacesHelp);

  cli::FacesEnrollOptions enroll;
  CLI::App* enroll_cmd =
      faces_cmd->add_subcommand("enroll", "add the largest face of each image to a person");
  enroll_cmd->add_option("person", enroll.person_id, "person id")->required()->check(kUtf8Text);
  enroll_cmd->add_option("images", enroll.images, "JPEG or PNG files")->required();
  enroll_cmd->add_flag("--no-detect", enroll.no_detect,
                       "the images are face crops: embed them whole");
  enroll_cmd->add_option("--source", enroll.source, "label stored with the faces (default: none)");
  enroll_cmd
      ->add_option("--request-id", enroll.request_id,
                   "names this enrollment so that a retry never enrolls twice (default: random)")
      ->check(kUtf8Text);
  enroll_cmd
      ->add_option("--retry-for", enroll.retry_for_s,
                   "seconds to retry when the store is busy or unreachable (0: no retry)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 86400.0));
  AddStoreClientOptions(enroll_cmd, &flags);

  cli::FacesVerifyOptions verify;
  CLI::App* verify_cmd = faces_cmd->add_subcommand(
      "verify", "is the face in the image this person? (exit 0 yes, 1 no)");
  verify_cmd->add_option("person", verify.person_id, "person id")->required()->check(kUtf8Text);
  verify_cmd->add_option("image", verify.image, "JPEG or PNG file")->required();
  verify_cmd->add_flag("--no-detect", verify.no_detect, "the image is a face crop");
  AddStoreClientOptions(verify_cmd, &flags);

  cli::FacesIdentifyOptions identify;
  CLI::App* identify_cmd = faces_cmd->add_subcommand(
      "identify", "who is the face in the image? (exit 0 recognised, 1 unknown)");
  identify_cmd->add_option("image", identify.image, "JPEG or PNG file")->required();
  identify_cmd->add_option("-k", identify.k, "persons to list (default 5)")
      ->check(CLI::Range(1, 100));
  identify_cmd
      ->add_option("--neighbors", identify.neighbors, "nearest faces that vote (default 10)")
      ->check(CLI::Range(1, 1000));
  identify_cmd->add_flag("--no-detect", identify.no_detect, "the image is a face crop");
  AddStoreClientOptions(identify_cmd, &flags);

  cli::FacesDeleteOptions remove;
  CLI::App* delete_cmd = faces_cmd->add_subcommand(
      "delete", "delete a person (or one face) and erase them from the data files");
  auto* delete_person =
      delete_cmd->add_option("person", remove.person_id, "person id")->check(kUtf8Text);
  auto* delete_face = delete_cmd->add_option("--face", remove.face_id, "delete only this face id")
                          ->check(CLI::PositiveNumber);
  delete_person->excludes(delete_face);
  delete_cmd->add_flag("--no-wait", remove.no_wait,
                       "do not wait for the compaction that erases the faces from the data "
                       "files (the store runs it within seconds)");
  AddStoreClientOptions(delete_cmd, &flags);

  cli::FacesListOptions list_faces;
  CLI::App* faces_list_cmd = faces_cmd->add_subcommand("list", "persons and their face counts");
  faces_list_cmd->add_flag("--face-ids", list_faces.face_ids, "show each person's face ids");
  AddStoreClientOptions(faces_list_cmd, &flags);

  cli::FacesClusterOptions cluster_faces;
  CLI::App* faces_cluster_cmd = faces_cmd->add_subcommand(
      "cluster", "k-means over faces: K given, or chosen by the elbow or X-means");
  faces_cluster_cmd->add_option("--k", cluster_faces.k, "number of clusters")
      ->check(CLI::PositiveNumber);
  faces_cluster_cmd
      ->add_option("--choose", cluster_faces.choose, "choose K: elbow or xmeans (default xmeans)")
      ->check(CLI::IsMember({"elbow", "xmeans"}));
  faces_cluster_cmd
      ->add_option("--persons", cluster_faces.persons,
                   "cluster these persons' faces (default: every face)")
      ->check(kUtf8Text);
  faces_cluster_cmd->add_option("--faces", cluster_faces.face_ids, "... and these face ids");
  faces_cluster_cmd->add_option("--k-min", cluster_faces.k_min, "smallest K tried (default 1)")
      ->check(CLI::PositiveNumber);
  faces_cluster_cmd->add_option("--k-max", cluster_faces.k_max, "largest K tried (default 10)")
      ->check(CLI::PositiveNumber);
  faces_cluster_cmd->add_option("--seed", cluster_faces.seed, "k-means seed")
      ->capture_default_str();
  faces_cluster_cmd->add_flag("--assignments", cluster_faces.assignments,
                              "print every face's cluster");
  AddStoreClientOptions(faces_cluster_cmd, &flags);

  CLI::App* faces_stats_cmd =
      faces_cmd->add_subcommand("stats", "sizes, index, encoder and threshold of the store");
  AddStoreClientOptions(faces_stats_cmd, &flags);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; every real parse error is a usage error.
    return app.exit(e) == 0 ? cli::kExitOk : cli::kExitUsage;
  }

  if (coordinator_cmd->parsed()) return dtrain::coordinator::RunCoordinator(coordinator_config);
  if (embed_store_cmd->parsed()) return ExecEmbedStore(embed_store_cmd->remaining());

  const cli::ClientEnvironment environment = cli::ReadClientEnvironment();
  auto config = cli::LoadConfigFile(cli::LocateConfigFile(environment), environment.home);
  if (!config.ok()) {
    std::fprintf(stderr, "dtrain: %s\n", config.status().message().c_str());
    return cli::kExitUsage;
  }
  const bool faces = faces_cmd->parsed();
  auto settings = faces ? cli::ResolveStoreClientSettings(flags, environment, *config)
                        : cli::ResolveClientSettings(flags, environment, *config);
  if (!settings.ok()) {
    std::fprintf(stderr, "dtrain: %s\n", settings.status().message().c_str());
    return cli::kExitUsage;
  }
  if (faces) {
    auto store = cli::ConnectStore(*settings, *config);
    if (!store.ok()) {
      std::fprintf(stderr, "dtrain: %s\n", store.status().ToString().c_str());
      return cli::kExitUsage;
    }
    cli::CommandEnv env;
    env.settings = *settings;
    env.token = store->token;
    env.out = &std::cout;
    env.err = &std::cerr;
    env.out_is_terminal = isatty(STDOUT_FILENO) == 1;
    auto* stub = store->stub.get();
    if (enroll_cmd->parsed()) return cli::RunFacesEnroll(enroll, stub, env);
    if (verify_cmd->parsed()) return cli::RunFacesVerify(verify, stub, env);
    if (identify_cmd->parsed()) return cli::RunFacesIdentify(identify, stub, env);
    if (delete_cmd->parsed()) return cli::RunFacesDelete(remove, stub, env);
    if (faces_list_cmd->parsed()) return cli::RunFacesList(list_faces, stub, env);
    if (faces_cluster_cmd->parsed()) return cli::RunFacesCluster(cluster_faces, stub, env);
    if (faces_stats_cmd->parsed()) return cli::RunFacesStats(stub, env);
  }
  auto connection = cli::Connect(*settings, *config);
  if (!connection.ok()) {
    std::fprintf(stderr, "dtrain: %s\n", connection.status().ToString().c_str());
    return cli::kExitUsage;
  }

  cli::CommandEnv env;
  env.settings = *settings;
  env.token = connection->token;
  env.out = &std::cout;
  env.err = &std::cerr;
  env.out_is_terminal = isatty(STDOUT_FILENO) == 1;
  auto* stub = connection->stub.get();

  if (submit_cmd->parsed()) return cli::RunSubmit(submit, stub, env);
  if (status_cmd->parsed()) {
    return cli::RunStatus(
        status_id_opt->count() > 0 ? std::optional<int64_t>(status_id) : std::nullopt, stub, env);
  }
  if (list_cmd->parsed()) return cli::RunList(list, stub, env);
  if (logs_cmd->parsed()) return cli::RunLogs(logs, stub, env);
  if (cancel_cmd->parsed()) return cli::RunCancel(cancel_id, stub, env);
  if (cluster_cmd->parsed()) return cli::RunCluster(stub, env);
  if (hold_cmd->parsed()) return cli::RunHold(hold_id, true, stub, env);
  if (release_cmd->parsed()) return cli::RunHold(release_id, false, stub, env);
  if (priority_cmd->parsed()) return cli::RunSetPriority(priority_id, priority_value, stub, env);
  if (app.got_subcommand("plot")) return cli::RunPlot(plot, stub, env);
  std::fprintf(stderr, "dtrain: no command given\n%s", app.help().c_str());
  return cli::kExitUsage;
}

}  // namespace dtrain::cli
