// ASHA's rungs and decisions (runtime/coordinator/early_stopping.h), and what the store keeps of
// them across a restart.
#include "runtime/coordinator/early_stopping.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "runtime/coordinator/job_store.h"
#include "tests/support/temp_dir.h"

namespace dtrain::coordinator {
namespace {

EarlyStoppingRule Rule(bool minimize = false) {
  EarlyStoppingRule rule;
  rule.metric = "eval.accuracy";
  rule.minimize = minimize;
  rule.grace_epochs = 2;
  rule.reduction_factor = 3;
  return rule;
}

TEST(EarlyStoppingTest, RungsAreGraceTimesPowersOfTheReductionFactor) {
  std::vector<int> rungs;
  for (int epoch = 1; epoch <= 60; ++epoch) {
    if (IsRung(Rule(), epoch)) rungs.push_back(epoch);
  }
  EXPECT_EQ(rungs, (std::vector<int>{2, 6, 18, 54}));
}

TEST(EarlyStoppingTest, ATrialGoesOnOnlyAmongTheBestOneInEta) {
  // Alone at its rung, a trial always goes on (asynchronous: nobody to compare with yet).
  EXPECT_EQ(StopReason(Rule(), 2, 0.4, {0.4}), std::nullopt);
  // Second of two: ceil(2/3) = 1 goes on, and it is not that one.
  EXPECT_EQ(*StopReason(Rule(), 2, 0.4, {0.9, 0.4}),
            "stopped early (ASHA) at epoch 2: eval.accuracy 0.4 is not among the best 1 of the 2 "
            "trials at this rung (at least 0.9 goes on)");
  EXPECT_EQ(StopReason(Rule(), 2, 0.9, {0.4, 0.9}), std::nullopt);
  // Four results: the best ceil(4/3) = 2 go on; a tie with the bar goes on.
  EXPECT_EQ(StopReason(Rule(), 6, 0.7, {0.9, 0.7, 0.5, 0.1}), std::nullopt);
  EXPECT_EQ(StopReason(Rule(), 6, 0.7, {0.9, 0.7, 0.7, 0.1}), std::nullopt);
  EXPECT_NE(StopReason(Rule(), 6, 0.5, {0.9, 0.7, 0.5, 0.1}), std::nullopt);
  // Lower is better for a loss.
  EXPECT_EQ(StopReason(Rule(true), 2, 0.1, {0.1, 0.9}), std::nullopt);
  EXPECT_EQ(*StopReason(Rule(true), 2, 0.9, {0.1, 0.9}),
            "stopped early (ASHA) at epoch 2: eval.accuracy 0.9 is not among the best 1 of the 2 "
            "trials at this rung (at most 0.1 goes on)");
  // A trial whose metric became NaN stops; NaN results of others do not count.
  EXPECT_EQ(*StopReason(Rule(), 2, std::nan(""), {0.5}),
            "stopped early (ASHA) at epoch 2: eval.accuracy is nan");
  EXPECT_EQ(StopReason(Rule(), 2, 0.5, {std::numeric_limits<double>::infinity() * 0, 0.5}),
            std::nullopt);
}

TEST(EarlyStoppingTest, RulesAreValidatedNamingTheField) {
  EarlyStoppingRule rule = Rule();
  EXPECT_TRUE(ValidateEarlyStopping(rule, "early_stopping").ok());
  rule.metric = "eval accuracy";
  EXPECT_EQ(ValidateEarlyStopping(rule, "early_stopping").message(),
            "early_stopping.metric: expected a metric name as in Job.metrics (1 to 128 of "
            "[A-Za-z0-9._-], e.g. eval.accuracy), got 'eval accuracy'");
  rule = Rule();
  rule.grace_epochs = 0;
  EXPECT_EQ(ValidateEarlyStopping(rule, "early_stopping").message(),
            "early_stopping.grace_epochs: expected 1 to 100000, got 0");
  rule = Rule();
  rule.reduction_factor = 17;
  EXPECT_EQ(ValidateEarlyStopping(rule, "early_stopping").message(),
            "early_stopping.reduction_factor: expected 2 to 16, got 17");
}

// The rule and the rung results are in the database: a restarted coordinator judges the next
// trial against the results recorded before it stopped.
TEST(EarlyStoppingStoreTest, RulesAndRungResultsSurviveAReopen) {
  dtrain::testing::TempDir dir;
  const std::string db = dir.str("jobs.db");
  {
    auto store = JobStore::Open(db);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    EXPECT_EQ(*(*store)->EarlyStoppingOf(7), std::nullopt);
    ASSERT_TRUE((*store)->SetEarlyStopping(7, Rule(true)).ok());
    ASSERT_TRUE((*store)->RecordRungResult(7, 2, 8, 0.5).ok());
    ASSERT_TRUE((*store)->RecordRungResult(7, 2, 9, 0.25).ok());
    ASSERT_TRUE((*store)->RecordRungResult(7, 6, 8, 0.1).ok());
  }
  auto store = JobStore::Open(db);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto rule = (*store)->EarlyStoppingOf(7);
  ASSERT_TRUE(rule.ok() && rule->has_value());
  EXPECT_EQ((*rule)->metric, "eval.accuracy");
  EXPECT_TRUE((*rule)->minimize);
  EXPECT_EQ((*rule)->grace_epochs, 2);
  EXPECT_EQ((*rule)->reduction_factor, 3);
  // A retried attempt of job 9 reaching rung 2 again replaces its earlier result.
  auto values = (*store)->RecordRungResult(7, 2, 9, 0.75);
  ASSERT_TRUE(values.ok()) << values.status().ToString();
  EXPECT_EQ(*values, (std::vector<double>{0.5, 0.75}));
  values = (*store)->RecordRungResult(7, 2, 10, 0.3);
  ASSERT_TRUE(values.ok());
  EXPECT_EQ(*values, (std::vector<double>{0.5, 0.75, 0.3}));
}

}  // namespace
}  // namespace dtrain::coordinator
