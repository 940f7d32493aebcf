#include "runtime/spec/tasks/face_triplet.h"

#include <algorithm>
#include <cmath>

#include "runtime/spec/job_spec.h"

namespace dtrain {
namespace {

using Value = SpecReader::Value;

// P x K must stay well inside an int (a global batch); 4096 x 4096 does.
constexpr int kMaxIdentitiesPerBatch = 4096;
constexpr int kMaxImagesPerIdentity = 4096;
constexpr int kMaxGalleryPerIdentity = 1 << 20;
constexpr double kMaxMargin = 1000;

constexpr EnumName<TripletMining> kMiningNames[] = {{"batch_hard", TripletMining::kBatchHard},
                                                    {"semi_hard", TripletMining::kSemiHard}};
constexpr EnumName<MiningScope> kScopeNames[] = {{"global", MiningScope::kGlobal},
                                                 {"local", MiningScope::kLocal}};

// Image fields face_triplet reads but rejects, with why (its batches and splits are by
// identity). They stay readable so the message can say why instead of "unknown field".
const std::pair<const char*, const char*> kRejectedDataFields[] = {
    {"data.split", "training uses data.train_classes, evaluation data.eval_classes"},
    {"data.generate",
     "the day/night generator writes 2 classes; face_triplet needs at least 2 training and 2 "
     "held-out identities"},
};

}  // namespace

const char* ToString(TripletMining v) { return NameOf(kMiningNames, v); }
const char* ToString(MiningScope v) { return NameOf(kScopeNames, v); }

std::vector<SpecReader::Field> FaceTripletSpec::DataFields(SpecReader& r) {
  std::vector<SpecReader::Field> fields = data.Fields(r);
  IdentityDataSpec& d = data;
  const std::vector<SpecReader::Field> identity_fields = {
      {"train_classes", false, [&r, &d](const Value& f) { r.ReadClassList(f, &d.train_classes); }},
      {"eval_classes", false, [&r, &d](const Value& f) { r.ReadClassList(f, &d.eval_classes); }},
      {"identities_per_batch", false,
       [&r, &d](const Value& f) {
         r.ReadInt(f, 2, kMaxIdentitiesPerBatch, &d.identities_per_batch);
       }},
      {"images_per_identity", false,
       [&r, &d](const Value& f) {
         r.ReadInt(f, 2, kMaxImagesPerIdentity, &d.images_per_identity);
       }},
      {"gallery_per_identity", false,
       [&r, &d](const Value& f) {
         r.ReadInt(f, 1, kMaxGalleryPerIdentity, &d.gallery_per_identity);
       }},
  };
  fields.insert(fields.end(), identity_fields.begin(), identity_fields.end());
  return fields;
}

std::vector<SpecReader::Field> FaceTripletSpec::Sections(SpecReader& r) {
  return {
      {"model", false,
       [this, &r](const Value& v) { ReadCnnModel(r, v, /*with_embedding=*/true, &model); }},
      {"loss", false,
       [this, &r](const Value& v) {
         r.ReadMap(v, {
                          {"margin", false,
                           [&](const Value& f) {
                             r.ReadDouble(f, {0.0, false, kMaxMargin, true}, &loss.margin);
                           }},
                          {"mining", false,
                           [&](const Value& f) { r.ReadEnum(f, kMiningNames, &loss.mining); }},
                          {"mining_scope", false,
                           [&](const Value& f) { r.ReadEnum(f, kScopeNames, &loss.mining_scope); }},
                      });
       }},
  };
}

std::vector<std::pair<std::string, std::string>> FaceTripletSpec::UnusedCoreFields() const {
  return {{"train.batch_size",
           "a batch holds data.identities_per_batch x data.images_per_identity images"}};
}

void FaceTripletSpec::Finish(SpecReader& r, const JobSpec&) {
  data.Finish(r);
  for (const auto& [field, why] : kRejectedDataFields) {
    if (r.Given(field)) r.ErrorAt(field, std::string("not used by task face_triplet: ") + why);
  }
  const IdentityDataSpec& d = data;
  if (d.balance != ClassBalance::kNone) {
    r.ErrorAt("data.balance",
              std::string("expected none with task face_triplet (P x K batches are balanced by "
                          "identity), got ") +
                  ToString(d.balance));
  }
  if (!r.Given("data.eval_classes")) {
    // Reported where `data` starts, like other missing fields of a map.
    r.Error(r.MarkOf("data"), "data.eval_classes",
            "required with task face_triplet: the held-out classes (identities) evaluation uses");
  } else if (d.eval_classes.size() < 2) {
    r.ErrorAt("data.eval_classes",
              "expected at least 2 classes (impostor pairs need two identities), got " +
                  std::to_string(d.eval_classes.size()));
  }
  if (!d.train_classes.empty()) {
    for (int c : d.train_classes) {
      if (std::find(d.eval_classes.begin(), d.eval_classes.end(), c) != d.eval_classes.end()) {
        r.ErrorAt("data.train_classes",
                  "class " + std::to_string(c) +
                      " is also in data.eval_classes; held-out classes must not be trained on");
      }
    }
    if (d.identities_per_batch > static_cast<int>(d.train_classes.size())) {
      const bool given = r.Given("data.identities_per_batch");
      r.Error(r.MarkOf(given ? "data.identities_per_batch" : "data.train_classes"),
              "data.identities_per_batch",
              "expected at most the number of data.train_classes (" +
                  std::to_string(d.train_classes.size()) + "), got " +
                  std::to_string(d.identities_per_batch) + (given ? "" : " (the default)"));
    }
  }
}

void FaceTripletSpec::EmitDataFields(YAML::Emitter& out) const {
  const IdentityDataSpec& d = data;
  d.Emit(out, {"split", "generate"});
  // Empty train_classes means "all but the held-out ones", known only once the data is read.
  if (!d.train_classes.empty()) {
    out << YAML::Key << "train_classes" << YAML::Value << YAML::Flow << d.train_classes;
  }
  out << YAML::Key << "eval_classes" << YAML::Value << YAML::Flow << d.eval_classes;
  out << YAML::Key << "identities_per_batch" << YAML::Value << d.identities_per_batch;
  out << YAML::Key << "images_per_identity" << YAML::Value << d.images_per_identity;
  out << YAML::Key << "gallery_per_identity" << YAML::Value << d.gallery_per_identity;
}

void FaceTripletSpec::EmitSections(YAML::Emitter& out) const {
  out << YAML::Key << "model" << YAML::Value << YAML::BeginMap;
  EmitCnnModel(out, model, /*with_embedding=*/true);
  out << YAML::EndMap;
  out << YAML::Key << "loss" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "margin" << YAML::Value;
  EmitDouble(out, loss.margin);
  out << YAML::Key << "mining" << YAML::Value << ToString(loss.mining);
  out << YAML::Key << "mining_scope" << YAML::Value << ToString(loss.mining_scope);
  out << YAML::EndMap;
}

ResourceEstimate FaceTripletSpec::EstimateNeeds(const JobSpec& spec) const {
  ResourceEstimate e;
  CnnInput in;
  // IDX images come at the files' own size (see ImageClassificationSpec::EstimateNeeds).
  in.channels = std::max(1, data.channels);
  in.height = std::max(1, data.height);
  in.width = std::max(1, data.width);
  in.outputs = model.embedding_dim;
  in.input_field = "data.resolution";
  in.output_field = "model.embedding_dim";
  in.embedding = true;
  EstimateCnn(model, in, &e);
  e.bytes_per_parameter = BytesPerParameter(spec.train.optimizer);
  // P x K images per global batch, shared by the ranks.
  const double global_batch =
      static_cast<double>(data.identities_per_batch) * data.images_per_identity;
  e.batch_per_rank = std::ceil(global_batch / std::max(1, spec.distributed.ranks));
  data.Estimate(&e);
  ChooseMemoryField("data.images_per_identity", "data.resolution", &e);
  return e;
}

void RegisterFaceTripletSpec(TaskSpecRegistry& registry) {
  (void)registry.Register({"face_triplet",
                           "face verification encoder: triplet loss on P x K identity batches",
                           [] { return std::make_unique<FaceTripletSpec>(); }});
}

}  // namespace dtrain
