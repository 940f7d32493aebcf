#include "workers/trainer/checkpoint.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <vector>

#include "runtime/common/atomic_file.h"

namespace dtrain::trainer {
namespace {

namespace fs = std::filesystem;

constexpr char kPrefix[] = "ckpt-";
constexpr char kSuffix[] = ".pt";

// Writes through `save` (which throws, as torch's archives do) into a temporary file that
// WriteFileAtomically then puts in place, so a crash never leaves a torn checkpoint or model.
template <typename SaveFn>
Status SaveAtomically(const std::string& path, SaveFn save) {
  return WriteFileAtomically(path, [&](const std::string& tmp) -> Status {
    try {
      save(tmp);
    } catch (const std::exception& e) {
      std::string what = e.what();
      return Internal("cannot write '" + tmp + "': " + what.substr(0, what.find('\n')));
    }
    return Status::Ok();
  });
}

std::vector<fs::path> ListCheckpoints(const std::string& dir) {
  std::vector<fs::path> found;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(kPrefix, 0) == 0 && name.size() > sizeof(kSuffix) &&
        name.compare(name.size() - 3, 3, kSuffix) == 0) {
      found.push_back(entry.path());
    }
  }
  std::sort(found.begin(), found.end());
  return found;
}

}  // namespace

Status SaveCheckpoint(const std::string& dir, const LoopPosition& position,
                      torch::nn::Module& model, torch::optim::Optimizer& optimizer, int keep_last) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Internal("cannot create checkpoint dir '" + dir + "': " + ec.message());
  char name[64];
  std::snprintf(name, sizeof(name), "%s%010lld%s", kPrefix,
                static_cast<long long>(position.global_step), kSuffix);
  const std::string path = (fs::path(dir) / name).string();
  DTRAIN_RETURN_IF_ERROR(SaveAtomically(path, [&](const std::string& tmp) {
    torch::serialize::OutputArchive archive;
    torch::serialize::OutputArchive model_archive, optimizer_archive;
    model.save(model_archive);
    optimizer.save(optimizer_archive);
    archive.write("model", model_archive);
    archive.write("optimizer", optimizer_archive);
    archive.write(
        "position",
        torch::tensor({position.epoch, position.micro_step, position.global_step}, torch::kLong));
    archive.save_to(tmp);
  }));
  std::vector<fs::path> all = ListCheckpoints(dir);
  for (size_t i = 0; i + static_cast<size_t>(keep_last) < all.size(); ++i) {
    fs::remove(all[i], ec);
  }
  return Status::Ok();
}

std::optional<std::string> FindLatestCheckpoint(const std::string& dir) {
  std::vector<fs::path> all = ListCheckpoints(dir);
  if (all.empty()) return std::nullopt;
  return all.back().string();
}

Status LoadCheckpoint(const std::string& path, torch::nn::Module& model,
                      torch::optim::Optimizer& optimizer, LoopPosition* position) {
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path);
    torch::serialize::InputArchive model_archive, optimizer_archive;
    archive.read("model", model_archive);
    archive.read("optimizer", optimizer_archive);
    // Archive reads replace a tensor's storage, shape included, so a checkpoint of another model
    // would load "successfully": compare every shape against the model as built from the spec.
    std::vector<std::pair<std::string, std::vector<int64_t>>> expected;
    for (const auto& p : model.named_parameters())
      expected.emplace_back(p.key(), p.value().sizes().vec());
    for (const auto& b : model.named_buffers())
      expected.emplace_back(b.key(), b.value().sizes().vec());
    model.load(model_archive);
    size_t i = 0;
    auto check = [&](const std::string& name, const torch::Tensor& t) -> Status {
      const auto& [want_name, want] = expected[i++];
      if (name != want_name || t.sizes().vec() != want) {
        return DataLoss("checkpoint '" + path + "' does not match this job's model: '" + name +
                        "' has shape " + c10::str(t.sizes()) + " in the checkpoint, the model " +
                        "built from the spec has " + c10::str(c10::IntArrayRef(want)));
      }
      return Status::Ok();
    };
    for (const auto& p : model.named_parameters())
      DTRAIN_RETURN_IF_ERROR(check(p.key(), p.value()));
    for (const auto& b : model.named_buffers()) DTRAIN_RETURN_IF_ERROR(check(b.key(), b.value()));
    optimizer.load(optimizer_archive);
    torch::Tensor p;
    archive.read("position", p);
    auto a = p.accessor<int64_t, 1>();
    position->epoch = a[0];
    position->micro_step = a[1];
    position->global_step = a[2];
  } catch (const std::exception& e) {
    std::string what = e.what();
    what = what.substr(0, what.find('\n'));
    return DataLoss("cannot load checkpoint '" + path +
                    "' (does it belong to this job's model?): " + what);
  }
  return Status::Ok();
}

Status SaveModel(const std::string& path, torch::nn::Module& model) {
  return SaveAtomically(path, [&](const std::string& tmp) {
    torch::serialize::OutputArchive archive;
    model.save(archive);
    archive.save_to(tmp);
  });
}

}  // namespace dtrain::trainer
