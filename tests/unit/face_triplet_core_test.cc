// Torch-free parts of the face_triplet task: its spec fields and their validation, the P x K
// batch sampler (runtime/data/sampling.h) and the verification metrics
// (workers/trainer/tasks/face_triplet/verification_metrics.h) against hand-computed ROC/AUC cases.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "runtime/data/sampling.h"
#include "runtime/spec/job_spec.h"
#include "runtime/spec/tasks/face_triplet.h"
#include "workers/trainer/tasks/face_triplet/verification_metrics.h"

namespace dtrain {
namespace {

// ------------------------------------------------------------------------------------ spec

// The face_triplet sections of a parsed spec.
const FaceTripletSpec& FaceOf(const JobSpec& spec) {
  static const FaceTripletSpec kNone;
  const auto* face = spec.TaskSpecAs<FaceTripletSpec>();
  EXPECT_NE(face, nullptr) << "task " << spec.task;
  return face != nullptr ? *face : kNone;
}

constexpr const char* kFaceSpec = R"(name: faces
task: face_triplet
data:
  source: idx
  path: /data/fashion
  train_classes: [0, 1, 2, 3, 4, 5, 6]
  eval_classes: [7, 8, 9]
  identities_per_batch: 6
  images_per_identity: 16
  gallery_per_identity: 5
model:
  conv_channels: [32, 64]
  embedding_dim: 64
loss:
  margin: 0.3
  mining: semi_hard
  mining_scope: local
)";

std::string ErrorOf(const std::string& yaml) {
  StatusOr<JobSpec> spec = ParseJobSpec(yaml, "job.yaml");
  EXPECT_FALSE(spec.ok()) << "parsed unexpectedly:\n" << yaml;
  return spec.ok() ? "" : spec.status().message();
}

// A face_triplet spec with `data_extra` added to its data map and `extra` at the top level.
std::string Face(const std::string& data_extra, const std::string& extra = "") {
  return "name: f\ntask: face_triplet\ndata:\n  path: d\n  eval_classes: [7, 8]\n" + data_extra +
         extra;
}

TEST(FaceTripletSpecTest, ParsesEveryField) {
  StatusOr<JobSpec> parsed = ParseJobSpec(kFaceSpec, "faces.yaml");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  const JobSpec& s = *parsed;
  EXPECT_EQ(s.task, "face_triplet");
  EXPECT_EQ(FaceOf(s).data.train_classes, (std::vector<int>{0, 1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(FaceOf(s).data.eval_classes, (std::vector<int>{7, 8, 9}));
  EXPECT_EQ(FaceOf(s).data.identities_per_batch, 6);
  EXPECT_EQ(FaceOf(s).data.images_per_identity, 16);
  EXPECT_EQ(FaceOf(s).data.gallery_per_identity, 5);
  EXPECT_EQ(FaceOf(s).model.embedding_dim, 64);
  EXPECT_DOUBLE_EQ(FaceOf(s).loss.margin, 0.3);
  EXPECT_EQ(FaceOf(s).loss.mining, TripletMining::kSemiHard);
  EXPECT_EQ(FaceOf(s).loss.mining_scope, MiningScope::kLocal);
}

TEST(FaceTripletSpecTest, Defaults) {
  StatusOr<JobSpec> parsed = ParseJobSpec(Face(""), "x");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_TRUE(FaceOf(*parsed).data.train_classes.empty());  // all but the held-out classes
  EXPECT_EQ(FaceOf(*parsed).data.identities_per_batch, 8);
  EXPECT_EQ(FaceOf(*parsed).data.images_per_identity, 4);
  EXPECT_EQ(FaceOf(*parsed).data.gallery_per_identity, 1);
  EXPECT_EQ(FaceOf(*parsed).model.embedding_dim, 128);
  EXPECT_DOUBLE_EQ(FaceOf(*parsed).loss.margin, 0.2);
  EXPECT_EQ(FaceOf(*parsed).loss.mining, TripletMining::kBatchHard);
  EXPECT_EQ(FaceOf(*parsed).loss.mining_scope, MiningScope::kGlobal);
  EXPECT_STREQ(ToString(TripletMining::kSemiHard), "semi_hard");
  EXPECT_STREQ(ToString(MiningScope::kGlobal), "global");
}

TEST(FaceTripletSpecTest, ToYamlRoundTripsTheFaceFields) {
  StatusOr<JobSpec> first = ParseJobSpec(kFaceSpec, "faces.yaml");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  const std::string yaml = ToYaml(*first);
  // face_triplet rejects batch_size and split, so the rendering must leave them out.
  EXPECT_EQ(yaml.find("batch_size"), std::string::npos) << yaml;
  EXPECT_EQ(yaml.find("split"), std::string::npos) << yaml;
  StatusOr<JobSpec> second = ParseJobSpec(yaml, "faces.yaml");
  ASSERT_TRUE(second.ok()) << second.status().ToString() << "\n" << yaml;
  EXPECT_EQ(ToYaml(*second), yaml);
  EXPECT_EQ(FaceOf(*second).data.train_classes, FaceOf(*first).data.train_classes);
  EXPECT_EQ(FaceOf(*second).data.eval_classes, FaceOf(*first).data.eval_classes);
  EXPECT_EQ(FaceOf(*second).data.identities_per_batch, 6);
  EXPECT_EQ(FaceOf(*second).data.images_per_identity, 16);
  EXPECT_EQ(FaceOf(*second).data.gallery_per_identity, 5);
  EXPECT_EQ(FaceOf(*second).model.embedding_dim, 64);
  EXPECT_EQ(FaceOf(*second).loss.margin, 0.3);
  EXPECT_EQ(FaceOf(*second).loss.mining, TripletMining::kSemiHard);
  EXPECT_EQ(FaceOf(*second).loss.mining_scope, MiningScope::kLocal);
  // Defaults render too, and empty train_classes stays "all but the held-out ones".
  StatusOr<JobSpec> defaults = ParseJobSpec(Face(""), "x");
  ASSERT_TRUE(defaults.ok());
  const std::string rendered = ToYaml(*defaults);
  EXPECT_NE(rendered.find("  eval_classes: [7, 8]\n"), std::string::npos) << rendered;
  EXPECT_EQ(rendered.find("train_classes"), std::string::npos) << rendered;
  EXPECT_NE(rendered.find("loss:\n  margin: 0.2\n  mining: batch_hard\n  mining_scope: global\n"),
            std::string::npos)
      << rendered;
  ASSERT_TRUE(ParseJobSpec(rendered, "x").ok());
}

TEST(FaceTripletSpecTest, FieldErrors) {
  EXPECT_EQ(ErrorOf(Face("  identities_per_batch: 1\n")),
            "job.yaml:6:25: data.identities_per_batch: expected an integer in [2, 4096], got 1");
  EXPECT_EQ(ErrorOf(Face("  images_per_identity: 1\n")),
            "job.yaml:6:24: data.images_per_identity: expected an integer in [2, 4096], got 1");
  EXPECT_EQ(ErrorOf(Face("  gallery_per_identity: 0\n")),
            "job.yaml:6:25: data.gallery_per_identity: expected an integer in [1, 1048576], got 0");
  EXPECT_EQ(ErrorOf(Face("  train_classes: [0, -1]\n")),
            "job.yaml:6:22: data.train_classes[1]: expected an integer >= 0, got -1");
  EXPECT_EQ(ErrorOf(Face("  train_classes: [0, 1, 0]\n")),
            "job.yaml:6:18: data.train_classes: expected distinct class indices, got 0 twice "
            "(items 0 and 2)");
  EXPECT_EQ(ErrorOf(Face("", "model: {embedding_dim: 0}\n")),
            "job.yaml:6:24: model.embedding_dim: expected an integer in [1, 16777216], got 0");
  EXPECT_EQ(ErrorOf(Face("", "loss: {margin: 0}\n")),
            "job.yaml:6:16: loss.margin: expected a number in (0, 1000], got 0");
  EXPECT_EQ(ErrorOf(Face("", "loss: {mining: hardest}\n")),
            "job.yaml:6:16: loss.mining: expected one of {batch_hard, semi_hard}, got 'hardest'");
  EXPECT_EQ(ErrorOf(Face("", "loss: {mining_scope: world}\n")),
            "job.yaml:6:22: loss.mining_scope: expected one of {global, local}, got 'world'");
  EXPECT_EQ(ErrorOf(Face("", "loss: {margn: 1}\n")),
            "job.yaml:6:8: loss.margn: unknown field; expected one of: margin, mining, "
            "mining_scope (did you mean 'margin'?)");
}

TEST(FaceTripletSpecTest, CrossFieldErrors) {
  EXPECT_EQ(ErrorOf("name: f\ntask: face_triplet\ndata:\n  path: d\n"),
            "job.yaml:4:3: data.eval_classes: required with task face_triplet: the held-out "
            "classes (identities) evaluation uses");
  EXPECT_EQ(ErrorOf("name: f\ntask: face_triplet\ndata: {path: d, eval_classes: [3]}\n"),
            "job.yaml:3:31: data.eval_classes: expected at least 2 classes (impostor pairs need "
            "two identities), got 1");
  EXPECT_EQ(ErrorOf(Face("  train_classes: [1, 7, 2]\n  identities_per_batch: 2\n")),
            "job.yaml:6:18: data.train_classes: class 7 is also in data.eval_classes; held-out "
            "classes must not be trained on");
  EXPECT_EQ(ErrorOf(Face("  train_classes: [1, 2, 3]\n  identities_per_batch: 4\n")),
            "job.yaml:7:25: data.identities_per_batch: expected at most the number of "
            "data.train_classes (3), got 4");
  EXPECT_EQ(ErrorOf(Face("  train_classes: [1, 2, 3]\n")),
            "job.yaml:6:18: data.identities_per_batch: expected at most the number of "
            "data.train_classes (3), got 8 (the default)");
  EXPECT_EQ(ErrorOf(Face("", "train: {batch_size: 32}\n")),
            "job.yaml:6:21: train.batch_size: not used by task face_triplet: a batch holds "
            "data.identities_per_batch x data.images_per_identity images");
  EXPECT_EQ(ErrorOf(Face("  split: 0.5\n")),
            "job.yaml:6:10: data.split: not used by task face_triplet: training uses "
            "data.train_classes, evaluation data.eval_classes");
  EXPECT_EQ(ErrorOf(Face("  balance: cap\n")),
            "job.yaml:6:12: data.balance: expected none with task face_triplet (P x K batches are "
            "balanced by identity), got cap");
  EXPECT_EQ(ErrorOf(Face("  generate: day_night\n")),
            "job.yaml:6:13: data.generate: not used by task face_triplet: the day/night "
            "generator writes 2 classes; face_triplet needs at least 2 training and 2 held-out "
            "identities");
}

TEST(FaceTripletSpecTest, FaceFieldsAreRejectedByOtherTasks) {
  EXPECT_EQ(ErrorOf("name: c\ntask: multiclass\ndata: {path: d, eval_classes: [1, 2]}\n"
                    "model: {embedding_dim: 64}\nloss: {margin: 0.1}\n"),
            "job.yaml:3:17: data.eval_classes: only used by task face_triplet, got task: "
            "multiclass\n"
            "job.yaml:4:9: model.embedding_dim: only used by task face_triplet, got task: "
            "multiclass\n"
            "job.yaml:5:1: loss: only used by task face_triplet, style_transfer, trigger_word, "
            "yolo, got task: multiclass");
}

// ---------------------------------------------------------------------------- P x K sampler

// 10 identities with 20..38 samples each (uneven), labels interleaved.
struct Identities {
  std::vector<int32_t> labels;
  std::vector<size_t> indices;
};
Identities MakeIdentities() {
  Identities s;
  for (int round = 0; round < 40; ++round) {
    for (int32_t c = 0; c < 10; ++c) {
      if (round < 20 + 2 * c) s.labels.push_back(c);
    }
  }
  for (size_t i = 0; i < s.labels.size(); ++i) s.indices.push_back(i);
  return s;
}

std::unique_ptr<data::PkBatchSampler> MakePk(const Identities& s, int p, int k, int rank, int world,
                                             uint64_t seed = 7) {
  auto sampler = data::PkBatchSampler::Create(s.indices, s.labels, p, k, rank, world, seed);
  EXPECT_TRUE(sampler.ok()) << sampler.status().ToString();
  return sampler.ok() ? std::move(sampler).value() : nullptr;
}

TEST(PkBatchSamplerTest, EveryBatchHasPIdentitiesTimesKImages) {
  const Identities s = MakeIdentities();
  auto sampler = MakePk(s, 4, 5, 0, 1);
  ASSERT_NE(sampler, nullptr);
  EXPECT_EQ(sampler->batches_per_epoch(), static_cast<int64_t>(s.indices.size()) / 20);
  EXPECT_EQ(sampler->batch_size(), 20);
  for (int epoch = 0; epoch < 3; ++epoch) {
    for (int64_t b = 0; b < sampler->batches_per_epoch(); ++b) {
      const std::vector<size_t> ids = sampler->Batch(epoch, b);
      ASSERT_EQ(ids.size(), 20u);
      std::map<int32_t, std::set<size_t>> per_identity;
      for (size_t i = 0; i < ids.size(); ++i) {
        // Identity-major: K consecutive images of one identity.
        EXPECT_EQ(s.labels[ids[i]], s.labels[ids[i - i % 5]]);
        per_identity[s.labels[ids[i]]].insert(ids[i]);
      }
      EXPECT_EQ(per_identity.size(), 4u);
      for (const auto& [label, images] : per_identity) {
        EXPECT_EQ(images.size(), 5u) << "K distinct images of identity " << label;
      }
    }
  }
}

TEST(PkBatchSamplerTest, RanksGetDisjointWholeIdentitiesThatConcatenateToTheGlobalBatch) {
  const Identities s = MakeIdentities();
  auto single = MakePk(s, 6, 4, 0, 1);
  std::vector<std::unique_ptr<data::PkBatchSampler>> ranks;
  for (int r = 0; r < 3; ++r) ranks.push_back(MakePk(s, 6, 4, r, 3));
  for (const auto& r : ranks) {
    ASSERT_NE(r, nullptr);
    EXPECT_EQ(r->batches_per_epoch(), single->batches_per_epoch());
    EXPECT_EQ(r->batch_size(), 8);  // 2 identities x 4 images
  }
  for (int epoch = 0; epoch < 2; ++epoch) {
    for (int64_t b = 0; b < single->batches_per_epoch(); ++b) {
      std::vector<size_t> concatenated;
      std::set<int32_t> seen;
      for (const auto& r : ranks) {
        const std::vector<size_t> shard = r->Batch(epoch, b);
        std::set<int32_t> mine;
        for (size_t id : shard) mine.insert(s.labels[id]);
        EXPECT_EQ(mine.size(), 2u);
        for (int32_t label : mine) EXPECT_TRUE(seen.insert(label).second) << "shared identity";
        concatenated.insert(concatenated.end(), shard.begin(), shard.end());
      }
      EXPECT_EQ(concatenated, single->Batch(epoch, b));
    }
  }
}

TEST(PkBatchSamplerTest, DeterministicPerEpochAndResumable) {
  const Identities s = MakeIdentities();
  auto a = MakePk(s, 4, 3, 1, 2);
  auto b = MakePk(s, 4, 3, 1, 2);
  // A fresh sampler asked for a mid-epoch batch first (a resumed run) gives the same batch.
  EXPECT_EQ(b->Batch(1, 5), a->Batch(1, 5));
  EXPECT_EQ(a->Batch(0, 0), b->Batch(0, 0));
  EXPECT_NE(a->Batch(0, 0), a->Batch(1, 0)) << "epochs differ";
  auto other_seed = MakePk(s, 4, 3, 1, 2, /*seed=*/8);
  EXPECT_NE(other_seed->Batch(0, 0), a->Batch(0, 0));
}

TEST(PkBatchSamplerTest, AnEpochUsesImagesBeforeRepeatingThem) {
  const Identities s = MakeIdentities();
  auto sampler = MakePk(s, 10, 2, 0, 1);  // every identity in every batch
  std::map<size_t, int> uses;
  for (int64_t b = 0; b < 10; ++b) {
    for (size_t id : sampler->Batch(0, b)) ++uses[id];
  }
  // 10 batches x 2 images of identity 0 (20 images): each used exactly once.
  for (size_t i = 0; i < s.labels.size(); ++i) {
    if (s.labels[i] == 0) {
      EXPECT_EQ(uses[i], 1) << i;
    }
  }
}

TEST(PkBatchSamplerTest, RejectsImpossibleShapes) {
  const Identities s = MakeIdentities();
  auto odd = data::PkBatchSampler::Create(s.indices, s.labels, 5, 4, 0, 2, 1);
  ASSERT_FALSE(odd.ok());
  EXPECT_EQ(odd.status().message(),
            "identities_per_batch (5) must be a multiple of the number of ranks (2): each rank "
            "takes whole identities of the global batch");
  auto too_many = data::PkBatchSampler::Create(s.indices, s.labels, 12, 4, 0, 1, 1);
  ASSERT_FALSE(too_many.ok());
  EXPECT_EQ(too_many.status().message(),
            "identities_per_batch (12) exceeds the number of training identities (10)");
}

TEST(PkBatchSamplerTest, IdentityWithFewerThanKImagesRepeatsThem) {
  std::vector<int32_t> labels = {0, 0, 1, 1, 1, 1, 1};
  std::vector<size_t> indices = {0, 1, 2, 3, 4, 5, 6};
  auto sampler = data::PkBatchSampler::Create(indices, labels, 2, 3, 0, 1, 3);
  ASSERT_TRUE(sampler.ok());
  const std::vector<size_t> ids = (*sampler)->Batch(0, 0);
  ASSERT_EQ(ids.size(), 6u);
  for (size_t id : ids) EXPECT_LT(id, 7u);
}

// ------------------------------------------------------------------------ verification metrics

}  // namespace
}  // namespace dtrain

namespace dtrain::trainer {
namespace {

// Genuine scores {0.9, 0.8, 0.5}, impostor scores {0.8, 0.3, 0.1}: one tie across the classes.
const std::vector<double> kScores = {0.9, 0.8, 0.5, 0.8, 0.3, 0.1};
const std::vector<uint8_t> kGenuine = {1, 1, 1, 0, 0, 0};

TEST(VerificationMetricsTest, RocCurveGroupsTies) {
  const std::vector<RocPoint> curve = RocCurve(kScores, kGenuine);
  // By hand: thresholds inf, 0.9, 0.8 (one genuine and one impostor at once), 0.5, 0.3, 0.1.
  const std::vector<std::vector<double>> expected = {{0, 0},      {0, 1. / 3}, {1. / 3, 2. / 3},
                                                     {1. / 3, 1}, {2. / 3, 1}, {1, 1}};
  ASSERT_EQ(curve.size(), expected.size());
  for (size_t i = 0; i < curve.size(); ++i) {
    EXPECT_NEAR(curve[i].fpr, expected[i][0], 1e-12) << i;
    EXPECT_NEAR(curve[i].tpr, expected[i][1], 1e-12) << i;
  }
  EXPECT_EQ(curve[2].threshold, 0.8);
}

TEST(VerificationMetricsTest, AucCountsTiesAsHalf) {
  // Mann-Whitney by hand over the 9 (genuine, impostor) pairs: 0.9 beats all 3; 0.8 beats 0.3
  // and 0.1 and ties 0.8 (1/2); 0.5 beats 0.3 and 0.1: (3 + 2.5 + 2) / 9 = 5/6.
  EXPECT_NEAR(RocAuc(RocCurve(kScores, kGenuine)), 5.0 / 6.0, 1e-12);
  EXPECT_NEAR(RocAuc(RocCurve({0.5, 0.5, 0.5, 0.5}, {1, 0, 1, 0})), 0.5, 1e-12);  // all tied
  EXPECT_NEAR(RocAuc(RocCurve({0.9, 0.7, 0.2, 0.1}, {1, 1, 0, 0})), 1.0, 1e-12);
  EXPECT_NEAR(RocAuc(RocCurve({0.9, 0.7, 0.2, 0.1}, {0, 0, 1, 1})), 0.0, 1e-12);
  // Two genuine tied with one impostor and one genuine above: (1 + 0.5 + 0.5) / 3.
  EXPECT_NEAR(RocAuc(RocCurve({0.9, 0.4, 0.4, 0.4}, {1, 1, 1, 0})), 2.0 / 3.0, 1e-12);
  EXPECT_DOUBLE_EQ(RocAuc(RocCurve({0.3, 0.2}, {1, 1})), 0.5);  // no impostors: undefined
}

TEST(VerificationMetricsTest, BestAccuracyThresholdIsBetweenScores) {
  // Accept >= t. By hand: t above 0.9 -> 3/6; 0.9 -> 4/6; 0.8 -> 4/6; 0.5 -> 5/6 (all genuine
  // accepted, impostor 0.8 wrongly); 0.3 -> 4/6; 0.1 -> 3/6. Best 5/6 between 0.5 and 0.3.
  const ThresholdChoice best = BestAccuracyThreshold(kScores, kGenuine);
  EXPECT_NEAR(best.accuracy, 5.0 / 6.0, 1e-12);
  EXPECT_NEAR(best.threshold, 0.4, 1e-12);
  // Perfectly separable: the midpoint of the gap.
  const ThresholdChoice clean = BestAccuracyThreshold({0.9, 0.7, 0.2, 0.1}, {1, 1, 0, 0});
  EXPECT_DOUBLE_EQ(clean.accuracy, 1.0);
  EXPECT_NEAR(clean.threshold, 0.45, 1e-12);
  // Only impostors: rejecting all is best, threshold above the highest score.
  const ThresholdChoice reject = BestAccuracyThreshold({0.4, 0.2}, {0, 0});
  EXPECT_DOUBLE_EQ(reject.accuracy, 1.0);
  EXPECT_GT(reject.threshold, 0.4);
  // Only genuine pairs: accepting all, threshold below the lowest score.
  const ThresholdChoice accept = BestAccuracyThreshold({0.4, 0.2}, {1, 1});
  EXPECT_DOUBLE_EQ(accept.accuracy, 1.0);
  EXPECT_LT(accept.threshold, 0.2);
  // A tie straddling the classes cannot be split: {0.6 g, 0.6 i, 0.6 i}: reject all (2/3).
  const ThresholdChoice tie = BestAccuracyThreshold({0.6, 0.6, 0.6}, {1, 0, 0});
  EXPECT_NEAR(tie.accuracy, 2.0 / 3.0, 1e-12);
  EXPECT_GT(tie.threshold, 0.6);
}

TEST(VerificationMetricsTest, TarAtFar) {
  const std::vector<RocPoint> curve = RocCurve(kScores, kGenuine);
  EXPECT_NEAR(TarAtFar(curve, 1e-3), 1. / 3, 1e-12);  // only FAR 0 qualifies
  EXPECT_NEAR(TarAtFar(curve, 0.34), 1.0, 1e-12);     // FAR 1/3 reaches TAR 1
  // 1000 impostors spread over [0, 1) and genuine pairs at 0.9995, 0.9985 and 0.5: FAR 1e-3
  // allows exactly one impostor (0.999) above the threshold, so TAR = 2/3.
  std::vector<double> scores;
  std::vector<uint8_t> genuine;
  for (int i = 0; i < 1000; ++i) {
    scores.push_back(i / 1000.0);
    genuine.push_back(0);
  }
  for (double g : {0.9995, 0.9985, 0.5}) {
    scores.push_back(g);
    genuine.push_back(1);
  }
  const VerificationMetrics m = ComputeVerificationMetrics(scores, genuine, 1e-3);
  EXPECT_NEAR(m.tar_at_far, 2.0 / 3.0, 1e-12);
  EXPECT_EQ(m.genuine_pairs, 3);
  EXPECT_EQ(m.impostor_pairs, 1000);
}

TEST(VerificationMetricsTest, ComputeMatchesThePieces) {
  std::vector<RocPoint> curve;
  const VerificationMetrics m = ComputeVerificationMetrics(kScores, kGenuine, 1e-3, &curve);
  EXPECT_NEAR(m.auc, 5.0 / 6.0, 1e-12);
  EXPECT_NEAR(m.best_accuracy, 5.0 / 6.0, 1e-12);
  EXPECT_NEAR(m.best_threshold, 0.4, 1e-12);
  EXPECT_NEAR(m.tar_at_far, 1.0 / 3.0, 1e-12);
  EXPECT_EQ(curve.size(), 6u);
}

TEST(VerificationMetricsTest, Top1Identification) {
  // 3 probes x 2 gallery entries (labels 4, 9).
  const std::vector<float> distances = {0.1f, 0.5f,   // probe label 4: nearest 4, right
                                        0.7f, 0.2f,   // probe label 4: nearest 9, wrong
                                        0.3f, 0.3f};  // probe label 9: tie -> lower index (4)
  EXPECT_NEAR(Top1IdentificationAccuracy(distances, {4, 4, 9}, {4, 9}), 1.0 / 3.0, 1e-12);
  EXPECT_EQ(Top1IdentificationAccuracy({}, {}, {4}), 0.0);
}

}  // namespace
}  // namespace dtrain::trainer
