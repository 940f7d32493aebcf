#include "workers/trainer/tasks/face_triplet/face_triplet.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <random>

#include "runtime/data/images/image_set.h"
#include "runtime/data/sampling.h"
#include "runtime/spec/tasks/face_triplet.h"
#include "workers/models/cnn.h"
#include "workers/models/face_encoder_artifact.h"
#include "workers/trainer/tasks/common/job_images.h"
#include "workers/trainer/tasks/face_triplet/triplet_loss.h"
#include "workers/trainer/tasks/face_triplet/verification_metrics.h"
#include "workers/trainer/tensor_comm.h"

namespace dtrain::trainer {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kEmbedChunk = 256;    // images per forward pass when embedding a set
constexpr size_t kRocPointsKept = 200;  // ROC points written to the evaluation details
constexpr uint64_t kPairSampleStream = 0x5041'4952'5300'0001;  // "PAIRS"

// Images `ids` of `set` as N x C x H x W float pixels / 255 (the encoder standardises itself).
at::Tensor ToTensor(const data::ImageSet& set, const std::vector<size_t>& ids) {
  const size_t bytes = set.image_bytes();
  at::Tensor raw = torch::empty(
      {static_cast<int64_t>(ids.size()), set.height, set.width, set.channels}, torch::kUInt8);
  uint8_t* out = raw.data_ptr<uint8_t>();
  for (size_t i = 0; i < ids.size(); ++i) std::copy_n(set.image(ids[i]), bytes, out + i * bytes);
  return raw.permute({0, 3, 1, 2}).to(torch::kFloat32).div_(255.0).contiguous();
}

std::string ClassList(const std::vector<int>& classes, const std::vector<std::string>& names) {
  std::string out;
  for (int c : classes) {
    if (!out.empty()) out += ", ";
    out += std::to_string(c) + " '" + names[c] + "'";
  }
  return out;
}

// One evaluation set: held-out identities' images.
struct EvalSet {
  at::Tensor images;  // N x C x H x W on the task's device
  std::vector<int64_t> labels;
};

class FaceTripletTask final : public Task {
 public:
  FaceTripletTask(const JobSpec& spec, const FaceTripletSpec& face, const TaskContext& context)
      : spec_(spec), face_(face), context_(context) {}

  Status Init();

  std::shared_ptr<torch::nn::Module> model() override { return model_.ptr(); }
  const TrainingSet& training_set() const override { return train_; }
  data::BatchSampler* batch_sampler() override { return sampler_.get(); }

  Batch GetBatch(const std::vector<size_t>& ids) const override {
    at::Tensor index = torch::tensor(std::vector<int64_t>(ids.begin(), ids.end()), torch::kLong)
                           .to(train_images_.device());
    return {train_images_.index_select(0, index), train_targets_.index_select(0, index)};
  }

  at::Tensor Loss(const Batch& batch) override {
    TripletBatchLoss loss = DistributedTripletLoss(context_.comm, model_->forward(batch.inputs),
                                                   batch.targets, face_.loss);
    active_ += static_cast<double>(loss.active);
    triplets_ += static_cast<double>(loss.triplets);
    return loss.loss;
  }

  std::map<std::string, StepStatistic> TakeStepStatistics() override {
    std::map<std::string, StepStatistic> out = {{"active_triplets", {active_, triplets_}}};
    active_ = triplets_ = 0;
    return out;
  }

  StatusOr<Evaluation> Evaluate(comm::Communicator& comm, EvalSplit split) override;

  Status SaveArtifacts(const std::string& output_dir, const Evaluation& test) override {
    return WriteFaceEncoderManifest(
        (fs::path(output_dir) / models::kFaceEncoderManifestName).string(), spec_, height_, width_,
        channels_, *model_, test);
  }

  std::string primary_metric() const override { return "auc"; }
  std::vector<std::string> DataReport() const override { return report_; }

 private:
  // Embeddings of `images`, N x D on the CPU, identical on every rank: each rank embeds a
  // contiguous shard and the shards are all-gathered.
  StatusOr<at::Tensor> Embed(comm::Communicator& comm, const at::Tensor& images);

  const JobSpec spec_;
  const FaceTripletSpec face_;  // the task's own sections of spec_
  const TaskContext context_;
  int height_ = 0, width_ = 0, channels_ = 0;
  std::vector<std::string> class_names_;
  std::vector<int32_t> train_labels_;  // by training sample id
  TrainingSet train_;
  at::Tensor train_images_, train_targets_;
  EvalSet validation_, test_;
  std::unique_ptr<data::PkBatchSampler> sampler_;
  torch::nn::Sequential model_{nullptr};
  std::vector<std::string> report_;
  double active_ = 0, triplets_ = 0;  // since the last TakeStepStatistics
};

Status FaceTripletTask::Init() {
  const IdentityDataSpec& d = face_.data;
  const std::string& path = spec_.data.path;
  DTRAIN_ASSIGN_OR_RETURN(JobImages images, LoadJobImages(path, d));
  const data::ImageSet& file = images.train;
  const data::ImageSet& test_file = images.test;
  const bool separate_test = images.separate_test;
  height_ = file.height;
  width_ = file.width;
  channels_ = file.channels;
  class_names_ = file.class_names;
  const int num_classes = static_cast<int>(class_names_.size());

  // Which classes are identities to train on and which are held out.
  auto check = [&](const std::vector<int>& classes, const char* field) -> Status {
    for (int c : classes) {
      if (c >= num_classes) {
        return InvalidArgument(std::string(field) + ": class " + std::to_string(c) +
                               " does not exist: '" + path + "' has " +
                               std::to_string(num_classes) + " classes (0-" +
                               std::to_string(num_classes - 1) + ")");
      }
    }
    return Status::Ok();
  };
  DTRAIN_RETURN_IF_ERROR(check(d.eval_classes, "data.eval_classes"));
  DTRAIN_RETURN_IF_ERROR(check(d.train_classes, "data.train_classes"));
  std::vector<char> is_eval(num_classes, 0), is_train(num_classes, 0);
  for (int c : d.eval_classes) is_eval[c] = 1;
  std::vector<int> train_classes = d.train_classes;
  if (train_classes.empty()) {
    for (int c = 0; c < num_classes; ++c) {
      if (!is_eval[c]) train_classes.push_back(c);
    }
  }
  for (int c : train_classes) is_train[c] = 1;
  if (train_classes.size() < 2) {
    return InvalidArgument("face_triplet needs at least 2 training identities, '" + path +
                           "' leaves " + std::to_string(train_classes.size()) +
                           " besides data.eval_classes");
  }
  const int world = context_.world_size;
  if (face_.loss.mining_scope == MiningScope::kLocal && world > 1 &&
      d.identities_per_batch / world < 2) {
    return InvalidArgument(
        "loss.mining_scope local mines inside each rank's shard, which needs at least 2 "
        "identities per rank: data.identities_per_batch (" +
        std::to_string(d.identities_per_batch) + ") / " + std::to_string(world) + " ranks");
  }

  std::vector<size_t> train_ids, validation_ids, test_ids;
  std::vector<int64_t> per_class(num_classes, 0);
  for (size_t i = 0; i < file.size(); ++i) {
    const int32_t label = file.labels[i];
    if (is_train[label]) train_ids.push_back(i);
    // image_folder: validation is the first images of each held-out identity, the test all.
    if (is_eval[label] && per_class[label]++ < kMaxValidationImagesPerIdentity) {
      validation_ids.push_back(i);
    }
    if (is_eval[label] && !separate_test) test_ids.push_back(i);
  }
  if (separate_test) {
    for (size_t i = 0; i < test_file.size(); ++i) {
      if (is_eval[test_file.labels[i]]) test_ids.push_back(i);
    }
  }
  const data::ImageSet& test_source = separate_test ? test_file : file;

  const torch::Device device = context_.use_cuda ? torch::Device(torch::kCUDA, context_.cuda_device)
                                                 : torch::Device(torch::kCPU);
  // Training samples are renumbered 0..n-1 (the sampler's ids).
  train_labels_.reserve(train_ids.size());
  for (size_t i : train_ids) train_labels_.push_back(file.labels[i]);
  train_.indices.resize(train_ids.size());
  for (size_t i = 0; i < train_ids.size(); ++i) train_.indices[i] = i;
  train_.labels = &train_labels_;
  train_.num_classes = static_cast<size_t>(num_classes);
  at::Tensor train_images = ToTensor(file, train_ids);
  auto make_eval = [&](const data::ImageSet& source, const std::vector<size_t>& ids) {
    EvalSet set;
    set.images = ToTensor(source, ids).to(device);
    for (size_t i : ids) set.labels.push_back(source.labels[i]);
    return set;
  };
  validation_ = make_eval(file, validation_ids);
  test_ = make_eval(test_source, test_ids);

  model_ = models::BuildEmbeddingCnn(face_.model, channels_, height_, width_);
  {
    // The encoder's input normalisation: per-channel statistics of the training images.
    torch::NoGradGuard no_grad;
    auto standardize = model_[0]->as<models::StandardizeImpl>();
    standardize->mean.copy_(train_images.mean({0, 2, 3}, /*keepdim=*/true));
    standardize->std.copy_(
        train_images.std({0, 2, 3}, /*unbiased=*/false, /*keepdim=*/true).clamp_min(1e-6));
  }
  model_->to(device);
  train_images_ = train_images.to(device);
  train_targets_ =
      torch::tensor(std::vector<int64_t>(train_labels_.begin(), train_labels_.end()), torch::kLong)
          .to(device);

  auto sampler =
      data::PkBatchSampler::Create(train_.indices, train_labels_, d.identities_per_batch,
                                   d.images_per_identity, context_.rank, world, spec_.train.seed);
  if (!sampler.ok()) return sampler.status().WithContext("data.identities_per_batch");
  sampler_ = std::move(sampler).value();

  report_.push_back("data: " + path + " (" + ToString(d.source) + "), " +
                    std::to_string(file.size()) + " images " + std::to_string(height_) + "x" +
                    std::to_string(width_) + "x" + std::to_string(channels_));
  if (file.skipped > 0) {
    report_.push_back("skipped " + std::to_string(file.skipped) +
                      " unreadable file(s), first: " + file.skipped_files.front());
  }
  report_.push_back("training identities: " + std::to_string(train_ids.size()) + " images of " +
                    ClassList(train_classes, class_names_));
  report_.push_back(
      "held-out identities (never trained on): " + ClassList(d.eval_classes, class_names_) +
      "; validation " + std::to_string(validation_ids.size()) + " images (" +
      (separate_test ? "train file" : "first of each") + "), test " +
      std::to_string(test_ids.size()) + " images" + (separate_test ? " (test file)" : ""));
  char loss[160];
  std::snprintf(loss, sizeof(loss), "loss: triplet, margin %g, %s mining, %s scope",
                face_.loss.margin, ToString(face_.loss.mining), ToString(face_.loss.mining_scope));
  report_.push_back("batches: " + std::to_string(d.identities_per_batch) + " identities x " +
                    std::to_string(d.images_per_identity) + " images (" +
                    std::to_string(d.identities_per_batch / world) + " identities per rank); " +
                    loss + "; embedding " + std::to_string(face_.model.embedding_dim) + "-d");
  if (validation_ids.empty() || test_ids.empty()) {
    return InvalidArgument("data.eval_classes " + ClassList(d.eval_classes, class_names_) +
                           " have no images in '" + path + "'");
  }
  return Status::Ok();
}

StatusOr<at::Tensor> FaceTripletTask::Embed(comm::Communicator& comm, const at::Tensor& images) {
  const int64_t n = images.size(0);
  const int64_t world = comm.size();
  const int64_t per_rank = (n + world - 1) / world;
  const int64_t begin = std::min(n, comm.rank() * per_rank);
  const int64_t end = std::min(n, begin + per_rank);
  const int64_t dim = face_.model.embedding_dim;
  // Every rank sends per_rank rows (the last shard padded) since all-gather needs equal counts.
  at::Tensor mine = torch::zeros({per_rank, dim}, torch::kFloat32);
  const bool was_training = model_->is_training();
  model_->eval();
  {
    torch::NoGradGuard no_grad;
    for (int64_t start = begin; start < end; start += kEmbedChunk) {
      const int64_t count = std::min(kEmbedChunk, end - start);
      mine.narrow(0, start - begin, count)
          .copy_(model_->forward(images.narrow(0, start, count)).to(torch::kCPU));
    }
  }
  if (was_training) model_->train();
  at::Tensor all = torch::empty({per_rank * world, dim}, torch::kFloat32);
  DTRAIN_ASSIGN_OR_RETURN(comm::BufferRef send, AsBuffer(mine));
  DTRAIN_ASSIGN_OR_RETURN(comm::BufferRef recv, AsBuffer(all));
  DTRAIN_RETURN_IF_ERROR(comm.AllGather(send, recv));
  return all.narrow(0, 0, n);
}

StatusOr<Evaluation> FaceTripletTask::Evaluate(comm::Communicator& comm, EvalSplit split) {
  const EvalSet& set = split == EvalSplit::kTest ? test_ : validation_;
  DTRAIN_ASSIGN_OR_RETURN(at::Tensor embeddings, Embed(comm, set.images));
  const int64_t n = embeddings.size(0);

  // Verification: cosine similarity of pairs (the embeddings have unit norm).
  std::vector<double> scores;
  std::vector<uint8_t> genuine;
  const int64_t all_pairs = n * (n - 1) / 2;
  const bool sampled = all_pairs > kMaxVerificationPairs;
  if (!sampled) {
    scores.reserve(all_pairs);
    genuine.reserve(all_pairs);
    const at::Tensor similarity = embeddings.mm(embeddings.t()).contiguous();
    const float* s = similarity.data_ptr<float>();
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t j = i + 1; j < n; ++j) {
        scores.push_back(s[i * n + j]);
        genuine.push_back(set.labels[i] == set.labels[j]);
      }
    }
  } else {
    // A seeded uniform sample of distinct-image pairs, the same on every rank.
    std::mt19937_64 rng(spec_.data.seed ^ kPairSampleStream);
    std::vector<int64_t> first(kMaxVerificationPairs), second(kMaxVerificationPairs);
    for (int64_t k = 0; k < kMaxVerificationPairs; ++k) {
      first[k] = static_cast<int64_t>(rng() % static_cast<uint64_t>(n));
      second[k] = static_cast<int64_t>(rng() % static_cast<uint64_t>(n - 1));
      if (second[k] >= first[k]) ++second[k];
      genuine.push_back(set.labels[first[k]] == set.labels[second[k]]);
    }
    const at::Tensor a = embeddings.index_select(0, torch::tensor(first, torch::kLong));
    const at::Tensor b = embeddings.index_select(0, torch::tensor(second, torch::kLong));
    const at::Tensor dots = (a * b).sum(1).to(torch::kFloat64).contiguous();
    scores.assign(dots.data_ptr<double>(), dots.data_ptr<double>() + kMaxVerificationPairs);
  }
  std::vector<RocPoint> roc;
  const VerificationMetrics v = ComputeVerificationMetrics(scores, genuine, kVerificationFar, &roc);
  scores = {};
  genuine = {};

  // Identification: the first G images of each identity are its gallery, the rest probes.
  std::map<int64_t, int64_t> seen;
  std::vector<int64_t> gallery_rows, probe_rows, gallery_labels, probe_labels;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t label = set.labels[i];
    if (seen[label]++ < face_.data.gallery_per_identity) {
      gallery_rows.push_back(i);
      gallery_labels.push_back(label);
    } else {
      probe_rows.push_back(i);
      probe_labels.push_back(label);
    }
  }
  double top1 = 0;
  if (!probe_rows.empty()) {
    const at::Tensor distances =
        SquaredDistances(embeddings.index_select(0, torch::tensor(probe_rows, torch::kLong)),
                         embeddings.index_select(0, torch::tensor(gallery_rows, torch::kLong)))
            .contiguous();
    top1 = Top1IdentificationAccuracy(
        std::vector<float>(distances.data_ptr<float>(),
                           distances.data_ptr<float>() + distances.numel()),
        probe_labels, gallery_labels);
  }

  Evaluation eval;
  eval.metrics["auc"] = v.auc;
  eval.metrics["accuracy"] = v.best_accuracy;
  eval.metrics["threshold"] = v.best_threshold;
  eval.metrics["tar_at_far_1e-3"] = v.tar_at_far;
  eval.metrics["top1"] = top1;
  // Counts are context, not measures of quality: they go with the details, so that curves and
  // sweeps over metrics are not crowded by lines that never move.
  nlohmann::json& details = eval.details;
  details["images"] = n;
  details["pairs"] = v.genuine_pairs + v.impostor_pairs;
  details["threshold_rule"] =
      "same identity when the cosine similarity of the embeddings is >= threshold, i.e. their "
      "squared L2 distance is <= threshold_squared_l2";
  details["threshold"] = v.best_threshold;
  details["threshold_squared_l2"] = 2 - 2 * v.best_threshold;
  details["genuine_pairs"] = v.genuine_pairs;
  details["impostor_pairs"] = v.impostor_pairs;
  details["pairs_sampled"] = sampled;
  details["gallery_images"] = gallery_rows.size();
  details["probe_images"] = probe_rows.size();
  nlohmann::json identities = nlohmann::json::array();
  for (const auto& [label, count] : seen) {
    identities.push_back({{"class", label}, {"name", class_names_[label]}, {"images", count}});
  }
  details["identities"] = identities;
  // A thinned ROC curve [fpr, tpr, threshold] for plots (the end points always kept).
  nlohmann::json curve = nlohmann::json::array();
  const size_t step = std::max<size_t>(1, roc.size() / kRocPointsKept);
  for (size_t i = 1; i < roc.size(); i += step) {
    curve.push_back({roc[i].fpr, roc[i].tpr, roc[i].threshold});
  }
  if (roc.size() > 1 && (roc.size() - 2) % step != 0) {
    curve.push_back({roc.back().fpr, roc.back().tpr, roc.back().threshold});
  }
  details["roc"] = curve;

  char line[320];
  std::snprintf(line, sizeof(line),
                "AUC %.4f  accuracy %.4f at cosine >= %.4f  TAR@FAR=1e-3 %.4f  top-1 %.4f "
                "(%lld images of %zu held-out identities, %lld pairs%s)",
                v.auc, v.best_accuracy, v.best_threshold, v.tar_at_far, top1,
                static_cast<long long>(n), seen.size(),
                static_cast<long long>(v.genuine_pairs + v.impostor_pairs),
                sampled ? " sampled" : "");
  eval.summary = line;
  return eval;
}

}  // namespace

StatusOr<std::unique_ptr<Task>> MakeFaceTripletTask(const JobSpec& spec,
                                                    const TaskContext& context) {
  const auto* face = spec.TaskSpecAs<FaceTripletSpec>();
  if (face == nullptr) return InvalidArgument("job '" + spec.name + "' is not a face_triplet job");
  auto task = std::make_unique<FaceTripletTask>(spec, *face, context);
  DTRAIN_RETURN_IF_ERROR(task->Init());
  return std::unique_ptr<Task>(std::move(task));
}

Status WriteFaceEncoderManifest(const std::string& path, const JobSpec& spec, int height, int width,
                                int channels, const torch::nn::Module& model,
                                const Evaluation& test) {
  const auto* face = spec.TaskSpecAs<FaceTripletSpec>();
  if (face == nullptr) return InvalidArgument("job '" + spec.name + "' is not a face_triplet job");
  models::FaceEncoderInfo info;
  info.model = face->model;
  info.height = height;
  info.width = width;
  info.channels = channels;
  const auto threshold = test.metrics.find("threshold");
  info.threshold = threshold == test.metrics.end() ? 0.0 : threshold->second;
  models::FaceEncoderProvenance provenance;
  provenance.job = spec.name;
  provenance.eval_classes = face->data.eval_classes;
  provenance.test_metrics = test.metrics;
  return models::WriteFaceEncoderManifest(path, info, model, provenance);
}

void RegisterFaceTripletTask(TaskRegistry& registry) {
  (void)registry.Register("face_triplet", MakeFaceTripletTask);
}

}  // namespace dtrain::trainer
