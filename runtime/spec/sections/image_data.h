// The `data` fields of tasks that learn from labelled images (day_night, multiclass,
// face_triplet): where the images come from, how they are resized, split and balanced, and the
// synthetic day/night generator. A task embeds an ImageDataSpec and hands its readers to the
// core parser through TaskSpec::DataFields.
#ifndef DTRAIN_RUNTIME_SPEC_SECTIONS_IMAGE_DATA_H_
#define DTRAIN_RUNTIME_SPEC_SECTIONS_IMAGE_DATA_H_

#include <yaml-cpp/yaml.h>

#include <set>
#include <string>
#include <vector>

#include "runtime/spec/resource_estimate.h"
#include "runtime/spec/spec_reader.h"

namespace dtrain {

enum class DataSource { kImageFolder, kIdx };
enum class ClassBalance { kNone, kWeightedSampling, kCap };

// Canonical YAML spellings ("image_folder", "weighted_sampling", ...).
const char* ToString(DataSource v);
const char* ToString(ClassBalance v);

// Largest data.resolution side: a 16384 x 16384 x 3 image still indexes within an int.
constexpr int kMaxImageSide = 16384;
// data.generate writes square RGB images of this side (DayNightOptions::size).
constexpr int kGeneratedImageSide = 96;

struct ImageDataSpec {
  // image_folder: a directory with one sub-directory per class.
  // idx: a directory holding {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz].
  DataSource source = DataSource::kImageFolder;
  // When non-empty and data.path does not exist, rank 0 writes a synthetic data set there
  // first. Only "day_night" is known.
  std::string generate;
  int generate_count = 2400;  // images written by `generate` (>= 2 per class)
  double split = 0.8;         // fraction of samples used for training, in (0, 1)
  ClassBalance balance = ClassBalance::kNone;
  // Input resolution every image is resized to. Defaults: 64x64x3 (image_folder), the
  // file's own (idx).
  int height = 0;
  int width = 0;
  int channels = 0;
  bool skip_corrupt = false;  // skip and count unreadable images instead of failing

  // Readers of the fields above ("source", "generate", ...), storing into this object.
  std::vector<SpecReader::Field> Fields(SpecReader& reader);
  // Defaults that depend on other fields, and rules across them; `reader` knows what was given.
  void Finish(SpecReader& reader);
  // Adds the data's share to *estimate: what `generate` writes, and the images held in memory
  // (decoded, then as float32) when the spec says how many there are (a generated set).
  void Estimate(ResourceEstimate* estimate) const;
  // The fields as YAML (inside the data map), except those named in `omit` ("split", ...).
  void Emit(YAML::Emitter& out, const std::set<std::string>& omit = {}) const;
};

}  // namespace dtrain

#endif  // DTRAIN_RUNTIME_SPEC_SECTIONS_IMAGE_DATA_H_
