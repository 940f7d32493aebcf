// face_triplet: an embedding for face verification of people never seen in training.
//
// A CNN encoder (workers/models/cnn.h, BuildEmbeddingCnn) maps an image to an L2-normalised
// embedding, trained with the triplet loss and online mining of tasks/triplet_loss.h on P x K
// batches (data::PkBatchSampler: P identities x K images, split by identity over the ranks).
// Classes of the data set are identities: data.train_classes are trained on, data.eval_classes are
// held out and only evaluated:
//  - verification over pairs of held-out images, scored by cosine similarity: ROC AUC, the best
//    accuracy and its threshold (written to encoder.json for the embedding store), TAR at
//    FAR = 1e-3;
//  - identification: per held-out identity the first data.gallery_per_identity images form
//    the gallery, the rest are probes matched to their nearest gallery embedding (top-1).
// Validation (every epoch) uses the held-out identities' images of the training file, at most
// kMaxValidationImagesPerIdentity each; the test (at the end) all of them in the test file
// (idx: t10k; image_folder has one file set, so validation is a part of the test set).
//
// The encoder is saved as model.pt (a torch::nn::Sequential archive) plus encoder.json, which
// describes how to rebuild and feed it (workers/models/face_encoder_artifact.h, whose
// LoadFaceEncoder does both).
#ifndef DTRAIN_WORKERS_TRAINER_TASKS_FACE_TRIPLET_FACE_TRIPLET_H_
#define DTRAIN_WORKERS_TRAINER_TASKS_FACE_TRIPLET_FACE_TRIPLET_H_

#include <memory>
#include <string>

#include "workers/trainer/task.h"
#include "workers/trainer/task_registry.h"

namespace dtrain::trainer {

// Held-out images per identity used for the per-epoch validation.
constexpr int64_t kMaxValidationImagesPerIdentity = 500;
// Verification uses every pair of evaluation images up to this many pairs, else a seeded
// uniform sample of this many pairs.
constexpr int64_t kMaxVerificationPairs = 5'000'000;
// The false accept rate TAR is reported at.
constexpr double kVerificationFar = 1e-3;

StatusOr<std::unique_ptr<Task>> MakeFaceTripletTask(const JobSpec& spec,
                                                    const TaskContext& context);

// Writes the job's encoder.json for `model`, built by BuildEmbeddingCnn(spec.model, channels,
// height, width): the encoder's manifest (workers/models/face_encoder_artifact.h) with the
// verification threshold and metrics of `test`, and the job's name and held-out classes.
Status WriteFaceEncoderManifest(const std::string& path, const JobSpec& spec, int height, int width,
                                int channels, const torch::nn::Module& model,
                                const Evaluation& test);

// Registers the trainer side of face_triplet.
void RegisterFaceTripletTask(TaskRegistry& registry);

}  // namespace dtrain::trainer

#endif  // DTRAIN_WORKERS_TRAINER_TASKS_FACE_TRIPLET_FACE_TRIPLET_H_
