#include "runtime/spec/sections/image_data.h"

#include <string>

#include "runtime/spec/yaml_values.h"

namespace dtrain {
namespace {

using Value = SpecReader::Value;
using yaml_values::Describe;
using yaml_values::IsPlain;
using yaml_values::ParseInt64;

constexpr int kDefaultImageFolderHeight = 64;
constexpr int kDefaultImageFolderWidth = 64;
constexpr int kDefaultImageFolderChannels = 3;
constexpr int kDayNightClasses = 2;
constexpr int kMinImagesPerGeneratedClass = 2;

constexpr EnumName<DataSource> kSourceNames[] = {{"image_folder", DataSource::kImageFolder},
                                                 {"idx", DataSource::kIdx}};
constexpr EnumName<ClassBalance> kBalanceNames[] = {
    {"none", ClassBalance::kNone},
    {"weighted_sampling", ClassBalance::kWeightedSampling},
    {"cap", ClassBalance::kCap}};
// Synthetic data sets `data.generate` knows.
const std::vector<std::string> kGenerators = {"day_night"};

void ReadResolution(SpecReader& r, const Value& v, ImageDataSpec* d) {
  if (!v.node.IsSequence() || v.node.size() != 3) {
    std::string found = Describe(v.node);
    if (v.node.IsSequence()) {
      found =
          "a list of " + std::to_string(v.node.size()) + (v.node.size() == 1 ? " item" : " items");
    }
    r.Error(v.mark, v.path, "expected a list [height, width, channels], got " + found);
    return;
  }
  const char* kParts[] = {"height", "width", "channels"};
  int values[3] = {0, 0, 0};
  bool ok = true;
  for (size_t i = 0; i < 3; ++i) {
    const YAML::Node item = v.node[i];
    Value element{item, item.IsNull() ? v.mark : item.Mark(),
                  v.path + "[" + std::to_string(i) + "]"};
    long long value = 0;
    bool overflow = false;
    bool is_int = IsPlain(item) && ParseInt64(item.Scalar(), &value, &overflow) && !overflow;
    if (i < 2) {
      if (!is_int || value < 1 || value > kMaxImageSide) {
        r.Expected(element,
                   "an integer in [1, " + std::to_string(kMaxImageSide) + "] (" + kParts[i] + ")");
        ok = false;
        continue;
      }
    } else if (!is_int || (value != 1 && value != 3)) {
      r.Expected(element, "1 or 3 (channels)");
      ok = false;
      continue;
    }
    values[i] = static_cast<int>(value);
  }
  if (!ok) return;
  d->height = values[0];
  d->width = values[1];
  d->channels = values[2];
}

}  // namespace

const char* ToString(DataSource v) { return NameOf(kSourceNames, v); }
const char* ToString(ClassBalance v) { return NameOf(kBalanceNames, v); }

std::vector<SpecReader::Field> ImageDataSpec::Fields(SpecReader& r) {
  return {
      {"source", false, [this, &r](const Value& f) { r.ReadEnum(f, kSourceNames, &source); }},
      {"generate", false, [this, &r](const Value& f) { r.ReadName(f, kGenerators, &generate); }},
      {"generate_count", false,
       [this, &r](const Value& f) {
         r.ReadInt(f, kDayNightClasses * kMinImagesPerGeneratedClass, SpecReader::kMaxInt,
                   &generate_count);
       }},
      {"split", false,
       [this, &r](const Value& f) {
         r.ReadDouble(f, {0.0, false, 1.0, false}, &split);
       }},
      {"balance", false, [this, &r](const Value& f) { r.ReadEnum(f, kBalanceNames, &balance); }},
      {"resolution", false, [this, &r](const Value& f) { ReadResolution(r, f, this); }},
      {"skip_corrupt", false, [this, &r](const Value& f) { r.ReadBool(f, &skip_corrupt); }},
  };
}

void ImageDataSpec::Finish(SpecReader& r) {
  if (!r.Given("data.resolution") && source == DataSource::kImageFolder) {
    height = kDefaultImageFolderHeight;
    width = kDefaultImageFolderWidth;
    channels = kDefaultImageFolderChannels;
  }
  // IDX images are used at the files' own resolution; a resolution given for them would be
  // silently ignored.
  if (r.Given("data.resolution") && source == DataSource::kIdx) {
    r.ErrorAt("data.resolution",
              "not used with data.source: idx (the files' own resolution is used); leave it out");
  }
  if (!generate.empty() && source != DataSource::kImageFolder) {
    r.ErrorAt(
        "data.generate",
        std::string("requires data.source: image_folder, got data.source: ") + ToString(source));
  }
}

void ImageDataSpec::Estimate(ResourceEstimate* e) const {
  if (generate.empty()) return;
  const double count = generate_count;
  e->generated_bytes += count * PngBytesUpperBound(kGeneratedImageSide, kGeneratedImageSide, 3);
  e->generated_field = "data.generate_count";
  // Every rank decodes the whole set (one byte per value) and holds it as float32.
  e->data_bytes += count * height * width * channels * (1 + kFloatBytes);
}

void ImageDataSpec::Emit(YAML::Emitter& out, const std::set<std::string>& omit) const {
  auto keep = [&](const char* field) { return omit.count(field) == 0; };
  if (keep("source")) out << YAML::Key << "source" << YAML::Value << ToString(source);
  if (keep("generate") && !generate.empty()) {
    out << YAML::Key << "generate" << YAML::Value << generate;
  }
  if (keep("generate_count")) {
    out << YAML::Key << "generate_count" << YAML::Value << generate_count;
  }
  if (keep("split")) {
    out << YAML::Key << "split" << YAML::Value;
    EmitDouble(out, split);
  }
  if (keep("balance")) out << YAML::Key << "balance" << YAML::Value << ToString(balance);
  // All zeros means "the files' own resolution" (idx), which is written by leaving it out.
  if (keep("resolution") && (height != 0 || width != 0 || channels != 0)) {
    out << YAML::Key << "resolution" << YAML::Value << YAML::Flow << YAML::BeginSeq << height
        << width << channels << YAML::EndSeq;
  }
  if (keep("skip_corrupt")) out << YAML::Key << "skip_corrupt" << YAML::Value << skip_corrupt;
}

}  // namespace dtrain
