// Sweep files (`dtrain submit --sweep`): parsing with errors that name the place, grid and
// random expansion, reproducibility and the limits.
#include "runtime/cli/sweep.h"

#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <string>

namespace dtrain::cli {
namespace {

TEST(SweepTest, GridIsEveryCombinationWithTheLastVaryingFastest) {
  auto sweep = ParseSweep(
      "method: grid\nparameters:\n  train.optimizer.lr: [0.001, 0.01]\n"
      "  train.batch_size: [16, 32, 64]\n",
      "s.yaml");
  ASSERT_TRUE(sweep.ok()) << sweep.status().ToString();
  auto trials = ExpandSweep(*sweep);
  ASSERT_TRUE(trials.ok()) << trials.status().ToString();
  ASSERT_EQ(trials->size(), 6u);
  EXPECT_EQ((*trials)[0].at("train.optimizer.lr"), "0.001");
  EXPECT_EQ((*trials)[0].at("train.batch_size"), "16");
  EXPECT_EQ((*trials)[1].at("train.batch_size"), "32");
  EXPECT_EQ((*trials)[3].at("train.optimizer.lr"), "0.01");
  EXPECT_EQ((*trials)[5].at("train.batch_size"), "64");
}

TEST(SweepTest, RandomIsReproducibleAndStaysInItsBounds) {
  const std::string text =
      "method: random\ntrials: 50\nseed: 7\nparameters:\n"
      "  train.optimizer.lr: {min: 0.0001, max: 0.1, log: true}\n"
      "  train.epochs: {min: 2, max: 6, integer: true}\n"
      "  train.batch_size: [32, 64]\n";
  auto sweep = ParseSweep(text, "s.yaml");
  ASSERT_TRUE(sweep.ok()) << sweep.status().ToString();
  auto first = ExpandSweep(*sweep);
  auto again = ExpandSweep(*sweep);
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*first, *again);
  ASSERT_EQ(first->size(), 50u);
  std::set<std::string> sizes, epochs;
  for (const auto& trial : *first) {
    const double lr = std::stod(trial.at("train.optimizer.lr"));
    EXPECT_GE(lr, 0.0001 * 0.99999);
    EXPECT_LE(lr, 0.1 * 1.00001);
    const int e = std::stoi(trial.at("train.epochs"));
    EXPECT_GE(e, 2);
    EXPECT_LE(e, 6);
    EXPECT_EQ(trial.at("train.epochs"), std::to_string(e));  // whole numbers
    sizes.insert(trial.at("train.batch_size"));
    epochs.insert(trial.at("train.epochs"));
  }
  EXPECT_EQ(sizes, (std::set<std::string>{"32", "64"}));
  EXPECT_GE(epochs.size(), 4u);
  sweep->seed = 8;
  auto other = ExpandSweep(*sweep);
  ASSERT_TRUE(other.ok());
  EXPECT_NE(*first, *other);
}

TEST(SweepTest, ErrorsNameTheFileLineAndField) {
  auto error = [](const std::string& text) {
    auto sweep = ParseSweep(text, "s.yaml");
    return sweep.ok() ? std::string("ok") : sweep.status().message();
  };
  EXPECT_EQ(error("method: bayes\nparameters: {a: [1]}\n"),
            "s.yaml:1:9: method: expected grid or random");
  EXPECT_EQ(error("method: random\ntrials: 0\nparameters: {a: [1]}\n"),
            "s.yaml:2:9: trials: expected a whole number from 1 to 1000");
  EXPECT_EQ(error("method: random\ntrials: 2\nparameters:\n  lr: {min: 1, max: 0.5}\n"),
            "s.yaml:4:7: parameters.lr: min must be below max");
  EXPECT_EQ(error("method: random\ntrials: 2\nparameters:\n  lr: {min: 0, max: 1, log: true}\n"),
            "s.yaml:4:7: parameters.lr: a log range needs min > 0");
  EXPECT_EQ(error("method: random\ntrials: 2\nparameters:\n  lr: {min: 0, max: nan}\n"),
            "s.yaml:4:21: parameters.lr.max: expected a finite number");
  EXPECT_EQ(error("method: grid\nparameters:\n  lr: {min: 0, max: 1}\n"),
            "s.yaml: parameters.lr: a grid needs a list of values; ranges need method: random");
  EXPECT_EQ(error("method: grid\ntrials: 3\nparameters: {a: [1]}\n"),
            "s.yaml: trials and seed belong to method: random");
  EXPECT_EQ(error("method: random\nparameters: {a: [1]}\n"),
            "s.yaml: trials: missing (method random draws this many)");
  EXPECT_EQ(error("method: grid\nstrategy: x\nparameters: {a: [1]}\n"),
            "s.yaml:2:1: strategy: unknown field; expected method, trials, seed, parameters, "
            "early_stopping");
  EXPECT_EQ(error("[1, 2]\n"), "s.yaml: expected a map with method and parameters");
  EXPECT_NE(error("method: [\n").find("s.yaml:"), std::string::npos);
}

TEST(SweepTest, EarlyStoppingIsReadWithItsDefaultsAndErrorsNameTheField) {
  auto sweep = ParseSweep(
      "method: grid\nparameters: {a: [1]}\nearly_stopping: {metric: train_loss, mode: min}\n",
      "s.yaml");
  ASSERT_TRUE(sweep.ok()) << sweep.status().ToString();
  ASSERT_TRUE(sweep->early_stopping.has_value());
  EXPECT_EQ(sweep->early_stopping->metric, "train_loss");
  EXPECT_TRUE(sweep->early_stopping->minimize);
  EXPECT_EQ(sweep->early_stopping->grace_epochs, 1);
  EXPECT_EQ(sweep->early_stopping->reduction_factor, 3);
  auto plain = ParseSweep("method: grid\nparameters: {a: [1]}\n", "s.yaml");
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->early_stopping.has_value());

  auto error = [](const std::string& rule) {
    auto parsed =
        ParseSweep("method: grid\nparameters: {a: [1]}\nearly_stopping: " + rule + "\n", "s.yaml");
    return parsed.ok() ? std::string("ok") : parsed.status().message();
  };
  EXPECT_EQ(error("{mode: max}"),
            "s.yaml:3:17: early_stopping.metric: missing (eval.accuracy, "
            "train_loss)");
  EXPECT_EQ(error("{metric: a, mode: up}"),
            "s.yaml:3:35: early_stopping.mode: expected max or min");
  EXPECT_EQ(error("{metric: a, grace_epochs: 0}"),
            "s.yaml:3:43: early_stopping.grace_epochs: expected a whole number from 1 to 100000");
  EXPECT_EQ(error("{metric: a, reduction_factor: 1}"),
            "s.yaml:3:47: early_stopping.reduction_factor: expected a whole number from 2 to 16");
  EXPECT_EQ(error("{metric: a, eta: 3}"),
            "s.yaml:3:29: early_stopping.eta: unknown field; expected metric, mode, grace_epochs, "
            "reduction_factor");
  EXPECT_EQ(error("3"),
            "s.yaml:3:17: early_stopping: expected a map with metric, mode, "
            "grace_epochs, reduction_factor");
}

TEST(SweepTest, AGridOfMoreThanAThousandTrialsIsRefused) {
  std::string values = "[";
  for (int i = 0; i < 40; ++i) values += (i ? ", " : "") + std::to_string(i);
  values += "]";
  auto sweep =
      ParseSweep("method: grid\nparameters:\n  a: " + values + "\n  b: " + values + "\n", "s.yaml");
  ASSERT_TRUE(sweep.ok()) << sweep.status().ToString();
  auto trials = ExpandSweep(*sweep);
  ASSERT_FALSE(trials.ok());
  EXPECT_NE(trials.status().message().find("more than 1000 combinations"), std::string::npos);
}

}  // namespace
}  // namespace dtrain::cli
