// Every JSON line the worker prints parses strictly (no unknown fields) as
// dtrain.v1.ProgressEvent, so the coordinator can read worker output with the generated code.
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "dtrain/v1/progress.pb.h"
#include "workers/trainer/progress.h"

namespace dtrain::trainer {
namespace {

std::vector<std::string> EmitAllEvents() {
  std::FILE* out = std::tmpfile();
  {
    ProgressOptions o;
    o.job = "day_night";
    o.rank = 0;
    o.world_size = 2;
    o.human = HumanProgress::kNone;
    o.json_out = out;
    ProgressReporter p(o);
    p.Started({{"task", "day_night"}, {"parameters", 1234}, {"epochs", 3}});
    StepReport s;
    s.epoch = 1;
    s.epochs = 3;
    s.global_step = 40;
    s.step_in_epoch = 10;
    s.steps_per_epoch = 30;
    s.loss = 0.25;
    s.lr = 0.001;
    s.samples_per_s = 512;
    s.eta_s = 12;
    p.Step(s, true);
    s.loss = std::nan("");
    p.Step(s, true);
    p.Epoch(1, 3, 0.3, 7.5, {{"accuracy", 0.97}, {"f1", 0.96}}, "accuracy 0.97");
    p.Checkpoint("runs/x/checkpoints/ckpt-0000000060.pt", 60);
    p.Finished(
        {{"test", {{"accuracy", 0.98}}}, {"test_details", {{"confusion_matrix", {1, 2, 3, 4}}}}});
    p.Warning("no heartbeat for over half of distributed.timeout_s from: rank 2", {2});
    p.Failed("collective #12 abandoned: rank 2 stopped answering", 1, 2);
  }
  std::rewind(out);
  std::vector<std::string> lines;
  char buf[65536];
  while (std::fgets(buf, sizeof(buf), out)) lines.emplace_back(buf);
  std::fclose(out);
  return lines;
}

TEST(ProgressProtoTest, EveryLineParsesAsProgressEvent) {
  std::vector<std::string> lines = EmitAllEvents();
  ASSERT_EQ(lines.size(), 8u);
  std::vector<dtrain::v1::ProgressEvent> events;
  for (const std::string& line : lines) {
    dtrain::v1::ProgressEvent event;
    google::protobuf::util::JsonParseOptions strict;
    strict.ignore_unknown_fields = false;
    auto status = google::protobuf::util::JsonStringToMessage(line, &event, strict);
    ASSERT_TRUE(status.ok()) << status.ToString() << "\n" << line;
    EXPECT_EQ(event.job(), "day_night");
    EXPECT_EQ(event.world_size(), 2);
    EXPECT_FALSE(event.time().empty());
    events.push_back(event);
  }
  EXPECT_EQ(events[0].event(), "started");
  EXPECT_EQ(events[0].details().fields().at("parameters").number_value(), 1234);
  EXPECT_EQ(events[1].event(), "step");
  EXPECT_EQ(events[1].step(), 40);
  EXPECT_EQ(events[1].epoch(), 2);  // reported 1-based
  EXPECT_DOUBLE_EQ(events[1].loss(), 0.25);
  EXPECT_TRUE(std::isnan(events[2].loss()));
  EXPECT_EQ(events[3].event(), "epoch");
  EXPECT_DOUBLE_EQ(events[3].metrics().at("accuracy"), 0.97);
  EXPECT_EQ(events[4].path(), "runs/x/checkpoints/ckpt-0000000060.pt");
  EXPECT_EQ(events[4].step(), 60);
  EXPECT_EQ(events[5].event(), "finished");
  EXPECT_EQ(
      events[5].summary().fields().at("test").struct_value().fields().at("accuracy").number_value(),
      0.98);
  EXPECT_EQ(events[6].event(), "warning");
  EXPECT_EQ(events[6].ranks_size(), 1);
  EXPECT_EQ(events[6].ranks(0), 2);
  EXPECT_EQ(events[7].event(), "failed");
  EXPECT_EQ(events[7].exit_code(), 1);
  EXPECT_EQ(events[7].blamed_rank(), 2);  // the rank at fault, not rank 0 that reported it
}

// Issue 16 item 1: metrics.jsonl grew across runs with no run marker or time, in a schema of its
// own. Now its lines are ProgressEvents (plus the legacy "type" and "eval" keys) with a run_id.
TEST(ProgressProtoTest, MetricsFileLinesAreProgressEventsOfOneRun) {
  const std::string path = ::testing::TempDir() + "/progress_proto_test_metrics.jsonl";
  std::remove(path.c_str());
  std::FILE* out = std::tmpfile();
  for (const char* run : {"run-a", "run-b"}) {  // a run and its resumption append to one file
    ProgressOptions o;
    o.job = "day_night";
    o.run_id = run;
    o.human = HumanProgress::kNone;
    o.json_out = out;
    o.metrics_path = path;
    ProgressReporter p(o);
    p.Started({{"resume", std::string(run) == "run-b"}});
    StepReport s;
    s.epochs = 1;
    s.global_step = 1;
    s.loss = 0.5;
    s.comm_wait_s = 0.25;
    p.Step(s, /*print=*/false);
    p.Epoch(0, 1, 0.5, 1.0, {{"accuracy", 0.9}}, "accuracy 0.9");
    p.Finished({{"test", {{"accuracy", 0.91}}}});
  }
  std::fclose(out);
  std::FILE* in = std::fopen(path.c_str(), "r");
  ASSERT_NE(in, nullptr);
  std::vector<dtrain::v1::ProgressEvent> events;
  char buf[65536];
  while (std::fgets(buf, sizeof(buf), in)) {
    nlohmann::json line = nlohmann::json::parse(buf);
    EXPECT_EQ(line["type"], line["event"]) << buf;
    if (line["event"] == "epoch") EXPECT_EQ(line["eval"], line["metrics"]) << buf;
    line.erase("type");
    line.erase("eval");
    dtrain::v1::ProgressEvent event;
    google::protobuf::util::JsonParseOptions strict;
    auto status = google::protobuf::util::JsonStringToMessage(line.dump(), &event, strict);
    ASSERT_TRUE(status.ok()) << status.ToString() << "\n" << buf;
    EXPECT_FALSE(event.time().empty());
    events.push_back(event);
  }
  std::fclose(in);
  std::remove(path.c_str());
  ASSERT_EQ(events.size(), 8u);
  const char* kinds[] = {"started", "step", "epoch", "finished"};
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].event(), kinds[i % 4]);
    EXPECT_EQ(events[i].run_id(), i < 4 ? "run-a" : "run-b");
  }
  EXPECT_DOUBLE_EQ(events[1].comm_wait_s(), 0.25);
  EXPECT_DOUBLE_EQ(events[2].metrics().at("accuracy"), 0.9);
}

TEST(ProgressProtoTest, RunIdsAreStampedAndDistinct) {
  const std::string a = NewRunId(), b = NewRunId();
  EXPECT_EQ(a.size(), std::string("20261205T110000Z-3f9a1c2e").size()) << a;
  EXPECT_NE(a, b);
}

}  // namespace
}  // namespace dtrain::trainer
