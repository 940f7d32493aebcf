// `dtrain plot`: curves read from metrics.jsonl, the figure's panels, and the SVG and PNG it
// writes (decoded here and checked for each run's colour), also for a job id resolved through
// an in-process coordinator.
#include "runtime/cli/plot_command.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <stb_image.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"

namespace dtrain::cli {
namespace {

namespace fs = std::filesystem;
using dtrain::testing::TempDir;

// A run of `epochs` epochs of 5 steps whose loss falls from `start`.
void WriteRun(const std::string& dir, double start, int epochs) {
  fs::create_directories(dir);
  std::ofstream out(dir + "/metrics.jsonl");
  int step = 0;
  for (int e = 1; e <= epochs; ++e) {
    for (int i = 0; i < 5; ++i) {
      ++step;
      out << R"({"type":"step","epoch":)" << e << R"(,"step":)" << step << R"(,"loss":)"
          << start / step << R"(,"lr":0.01,"samples_per_s":)" << 100 + step
          << R"(,"comm_wait_s":0.001,"backward_s":0.01})"
          << "\n";
    }
    out << R"({"type":"epoch","epoch":)" << e
        << R"(,"train_loss":1,"seconds":2,"eval":{"accuracy":)" << 0.5 + 0.1 * e << R"(,"loss":)"
        << start / (e + 1) << "}}\n";
  }
}

TEST(PlotDataTest, ReadsStepAndEpochCurves) {
  TempDir temp;
  WriteRun(temp.str("a"), 2.0, 2);
  auto run = ReadRunCurves(temp.str("a"), "a");
  ASSERT_OK(run);
  ASSERT_EQ(run->loss.size(), 10u);
  EXPECT_EQ(run->loss[0], std::make_pair(1.0, 2.0));
  EXPECT_EQ(run->loss[9], std::make_pair(10.0, 0.2));
  EXPECT_EQ(run->samples_per_s[4], std::make_pair(5.0, 105.0));
  ASSERT_EQ(run->eval.size(), 2u);
  EXPECT_EQ(run->eval["accuracy"], (Curve{{1, 0.6}, {2, 0.7}}));
}

TEST(PlotDataTest, NonFiniteValuesAreLeftOutAndAResumedRunKeepsTheLaterValue) {
  TempDir temp;
  fs::create_directories(temp.str("r"));
  std::ofstream(temp.str("r/metrics.jsonl"))
      << R"({"type":"step","epoch":1,"step":1,"loss":1.0,"samples_per_s":10})"
      << "\n"
      << R"({"type":"step","epoch":1,"step":2,"loss":"NaN","samples_per_s":10})"
      << "\n"
      << R"({"type":"step","epoch":1,"step":1,"loss":0.5,"samples_per_s":20})"
      << "\n"
      << R"({"type":"epoch","epoch":1,"eval":{"accuracy":0.5,"note":"x"}})"
      << "\n"
      << R"({"type":"step","epoch":2,"st)";  // a line being written when plot read the file
  auto run = ReadRunCurves(temp.str("r"), "r");
  ASSERT_OK(run);
  EXPECT_EQ(run->loss, (Curve{{1, 0.5}}));
  EXPECT_EQ(run->samples_per_s, (Curve{{1, 20}, {2, 10}}));
  EXPECT_EQ(run->eval.count("note"), 0u);
}

TEST(PlotDataTest, ErrorsNameTheFileAndLine) {
  TempDir temp;
  auto missing = ReadRunCurves(temp.str("none"), "none");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find(temp.str("none/metrics.jsonl")), std::string::npos);
  EXPECT_NE(missing.status().message().find("expected a run's output_dir"), std::string::npos);
  fs::create_directories(temp.str("bad"));
  std::ofstream(temp.str("bad/metrics.jsonl")) << "{\"type\":\"step\"}\nnot json\n{}\n";
  auto bad = ReadRunCurves(temp.str("bad"), "bad");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            temp.str("bad/metrics.jsonl") + ":2: expected one JSON object per line");
}

TEST(PlotRenderTest, NiceTicksAreRoundNumbersCoveringTheRange) {
  EXPECT_EQ(NiceTicks(0, 10, 5), (std::vector<double>{0, 2, 4, 6, 8, 10}));
  EXPECT_EQ(NiceTicks(0.13, 0.61, 5), (std::vector<double>{0.2, 0.3, 0.4, 0.5, 0.6}));
  EXPECT_EQ(NiceTicks(1, 1, 5), std::vector<double>{});
  const std::vector<double> around_zero = NiceTicks(-0.04, 0.7, 5);
  ASSERT_FALSE(around_zero.empty());
  EXPECT_FALSE(std::signbit(around_zero[0])) << "-0 would print as -0.0";
}

TEST(PlotCommandTest, PanelsAreLossEachValidationMetricAndThroughput) {
  RunCurves a{"a", {{1, 1}}, {{1, 5}}, {{"accuracy", {{1, 0.5}}}}};
  RunCurves b{"b", {{1, 2}}, {{1, 6}}, {{"f1", {{1, 0.4}}}}};
  const std::vector<PlotPanel> panels = CurvePanels({a, b});
  ASSERT_EQ(panels.size(), 4u);
  EXPECT_EQ(panels[0].title, "training loss");
  EXPECT_EQ(panels[1].title, "validation accuracy");
  EXPECT_EQ(panels[1].x_label, "epoch");
  EXPECT_EQ(panels[2].title, "validation f1");
  EXPECT_TRUE(panels[2].series[0].points.empty());  // run a has no f1: drawn as "no data"
  EXPECT_EQ(panels[3].title, "throughput (samples/s, all ranks)");
  ASSERT_EQ(panels[3].series.size(), 2u);
  EXPECT_EQ(panels[3].series[1].label, "b");
}

// Serves GetJob for one job, and ListJobs of an array's jobs.
class FakeCoordinator final : public v1::Coordinator::Service {
 public:
  explicit FakeCoordinator(v1::Job job, std::vector<v1::Job> array = {})
      : job_(std::move(job)), array_(std::move(array)) {}
  grpc::Status ListJobs(grpc::ServerContext*, const v1::ListJobsRequest* request,
                        v1::ListJobsResponse* response) override {
    for (const v1::Job& job : array_) {
      if (job.array_id() == request->array_id()) *response->add_jobs() = job;
    }
    return grpc::Status::OK;
  }
  grpc::Status GetJob(grpc::ServerContext*, const v1::GetJobRequest* request,
                      v1::Job* job) override {
    if (request->job_id() != job_.job_id()) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND,
                          "job " + std::to_string(request->job_id()) + " not found");
    }
    *job = job_;
    return grpc::Status::OK;
  }

 private:
  v1::Job job_;
  std::vector<v1::Job> array_;
};

// `dtrain plot`'s side of a FakeCoordinator served in-process: the stub and the command's output.
struct Client {
  explicit Client(std::unique_ptr<FakeCoordinator> fake) : service(std::move(fake)) {
    grpc::ServerBuilder builder;
    builder.RegisterService(service.get());
    server = builder.BuildAndStart();
    if (server) stub = v1::Coordinator::NewStub(server->InProcessChannel(grpc::ChannelArguments()));
    env.settings.timeout_s = 10;
    env.out = &out;
    env.err = &err;
  }
  ~Client() {
    if (server) server->Shutdown();
  }
  std::unique_ptr<FakeCoordinator> service;
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<v1::Coordinator::Stub> stub;
  std::ostringstream out, err;
  CommandEnv env;
};

// How many pixels of `png` have exactly colour `rgb`.
int CountColour(const std::string& png, unsigned rgb, int* width, int* height) {
  int channels = 0;
  unsigned char* pixels = stbi_load(png.c_str(), width, height, &channels, 3);
  if (pixels == nullptr) return -1;
  int count = 0;
  for (int i = 0; i < *width * *height; ++i) {
    const unsigned c = (pixels[3 * i] << 16) | (pixels[3 * i + 1] << 8) | pixels[3 * i + 2];
    count += c == rgb;
  }
  stbi_image_free(pixels);
  return count;
}

TEST(PlotCommandTest, ADirectoryAndAJobAreDrawnIntoOneSvgAndPng) {
  TempDir temp;
  WriteRun(temp.str("runs/baseline"), 2.0, 3);
  WriteRun(temp.str("runs/job-7"), 3.0, 3);
  v1::Job job;
  job.set_job_id(7);
  job.set_name("wider");
  v1::Transition* t = job.add_history();
  t->set_reason("placed on localhost:2; output_dir " + temp.str("runs/job-7"));
  Client client(std::make_unique<FakeCoordinator>(job));
  ASSERT_NE(client.server, nullptr);
  auto* stub = client.stub.get();
  CommandEnv& env = client.env;
  std::ostringstream &out = client.out, &err = client.err;

  PlotOptions options;
  options.runs = {temp.str("runs/baseline"), "7"};
  options.out_prefix = temp.str("cmp");
  ASSERT_EQ(RunPlot(options, stub, env), kExitOk) << err.str();
  EXPECT_EQ(out.str(), "wrote " + temp.str("cmp.svg") + " and " + temp.str("cmp.png") + "\n");
  std::ifstream svg(temp.str("cmp.svg"));
  std::string svg_text((std::istreambuf_iterator<char>(svg)), std::istreambuf_iterator<char>());
  EXPECT_NE(svg_text.find("<svg"), std::string::npos);
  // Both runs' curves are drawn in their palette colours (Tableau blue, orange).
  EXPECT_NE(svg_text.find("rgb(30.588235%,47.45098%,65.490196%)"), std::string::npos);
  EXPECT_NE(svg_text.find("rgb(94.901961%,55.686275%,16.862745%)"), std::string::npos);
  int width = 0, height = 0;
  EXPECT_GT(CountColour(temp.str("cmp.png"), 0x4E79A7, &width, &height), 500);
  EXPECT_GT(CountColour(temp.str("cmp.png"), 0xF28E2B, &width, &height), 500);
  EXPECT_EQ(width, 2 * 1120);  // 2 columns of panels, at twice the SVG's size
  // One legend row (20 px and 12 px padding each side) over loss + 2 metrics + throughput.
  EXPECT_EQ(height, 2 * (44 + 2 * 340));

  // A job that never launched, a job the coordinator does not know, a file for a directory.
  options.runs = {"8"};
  EXPECT_EQ(RunPlot(options, stub, env), kExitNotFound);
  EXPECT_NE(err.str().find("dtrain plot: job 8: job 8 not found"), std::string::npos) << err.str();
  options.runs = {temp.str("runs/nothing")};
  EXPECT_EQ(RunPlot(options, stub, env), kExitUsage);
  options.runs = {temp.str("runs/baseline")};
  options.out_prefix = temp.str("no/such/dir/x");
  EXPECT_EQ(RunPlot(options, stub, env), kExitUsage);
  EXPECT_NE(err.str().find("cannot write " + temp.str("no/such/dir/x.svg")), std::string::npos)
      << err.str();
}

TEST(PlotCommandTest, EveryRunGetsItsOwnLegendName) {
  // Two run directories both called "run" were drawn as one run: one colour, one legend entry.
  EXPECT_EQ(RunLabels({"/tmp/a/run", "/tmp/b/run/", "baseline"}, {}),
            (std::vector<std::string>{"a/run", "b/run", "baseline"}));
  EXPECT_EQ(RunLabels({"x/a/run", "y/a/run", "run"}, {}),
            (std::vector<std::string>{"x/a/run", "y/a/run", "run"}));
  EXPECT_EQ(RunLabels({"runs/r1", "./runs/r1", "7"}, {{"7", "wider"}}),
            (std::vector<std::string>{"runs/r1", "runs/r1 (2)", "job 7 (wider)"}));
}

// Issue 16: `dtrain plot --array ID` overlays a sweep's trials.
TEST(PlotCommandTest, AnArraysStartedTrialsAreOverlaid) {
  TempDir temp;
  std::vector<v1::Job> trials;
  for (int i = 0; i < 3; ++i) {
    v1::Job job;
    job.set_job_id(10 + i);
    job.set_name("lr_sweep");
    job.set_array_id(10);
    job.set_array_index(i);
    if (i < 2) {  // the third has not started
      job.set_output_dir(temp.str("runs/trial" + std::to_string(i)));
      WriteRun(job.output_dir(), 2.0 + i, 3);
    }
    trials.push_back(job);
  }
  Client client(std::make_unique<FakeCoordinator>(v1::Job(), trials));
  ASSERT_NE(client.server, nullptr);
  auto* stub = client.stub.get();
  CommandEnv& env = client.env;
  std::ostringstream& err = client.err;

  PlotOptions options;
  options.array_id = 10;
  options.out_prefix = temp.str("sweep");
  ASSERT_EQ(RunPlot(options, stub, env), kExitOk) << err.str();
  EXPECT_EQ(err.str(), "dtrain plot: array 10: 1 job(s) not started yet, left out\n");
  int width = 0, height = 0;
  EXPECT_GT(CountColour(temp.str("sweep.png"), 0x4E79A7, &width, &height), 500);
  EXPECT_GT(CountColour(temp.str("sweep.png"), 0xF28E2B, &width, &height), 500);
  EXPECT_EQ(CountColour(temp.str("sweep.png"), 0xE15759, &width, &height), 0);  // no third run

  err.str("");
  options.array_id = 99;
  EXPECT_EQ(RunPlot(options, stub, env), kExitNotFound);
  EXPECT_EQ(err.str(), "dtrain plot: array 99 has no started job (no such array)\n");
  err.str("");
  options.array_id = 0;
  EXPECT_EQ(RunPlot(options, stub, env), kExitUsage);
  EXPECT_EQ(err.str(), "dtrain plot: give job ids, run directories or --array ID\n");
}

TEST(PlotCommandTest, AJobWithoutARunDirectoryIsNamed) {
  v1::Job job;
  job.set_job_id(3);
  EXPECT_EQ(JobRunDirectory(job).status().message(),
            "job 3 has no run directory yet (it has not been launched)");
  job.add_history()->set_reason("placed; output_dir /a/b");
  job.add_history()->set_reason("retry; output_dir /a/c");
  EXPECT_EQ(*JobRunDirectory(job), "/a/c");
}

}  // namespace
}  // namespace dtrain::cli
