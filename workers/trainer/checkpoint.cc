#include "workers/trainer/checkpoint.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include "runtime/common/atomic_file.h"

namespace dtrain::trainer {
namespace {

namespace fs = std::filesystem;

constexpr char kPrefix[] = "ckpt-";
constexpr char kSuffix[] = ".pt";
constexpr char kTrailerMagic[8] = {'d', 't', 'c', 'k', 'p', 't', '0', '1'};
constexpr size_t kTrailerBytes = 24;  // magic, archive length, checksum

uint64_t Fnv1a64(const char* data, size_t size) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < size; ++i)
    h = (h ^ static_cast<unsigned char>(data[i])) * 0x100000001b3ull;
  return h;
}

void PutLittleEndian(uint64_t v, std::string* out) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t GetLittleEndian(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

std::string FirstLine(const std::exception& e) {
  const auto* torch_error = dynamic_cast<const c10::Error*>(&e);
  std::string what = torch_error ? torch_error->what_without_backtrace() : e.what();
  return what.substr(0, what.find('\n'));
}

// Serialises in memory: torch's file writer throws from its destructor on a write error (a full
// disk aborted the worker with SIGABRT), while WriteFileAtomically reports it as a Status.
StatusOr<std::string> Serialize(const std::string& what, torch::serialize::OutputArchive& archive) {
  std::string bytes;
  try {
    archive.save_to([&bytes](const void* data, size_t size) -> size_t {
      bytes.append(static_cast<const char*>(data), size);
      return size;
    });
  } catch (const std::exception& e) {
    return Internal("cannot serialise " + what + ": " + FirstLine(e));
  }
  return bytes;
}

// The archive inside a checkpoint file, once its trailer vouches for it.
StatusOr<std::string> ReadIntactArchive(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot read checkpoint '" + path + "': " + std::strerror(errno));
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  if (in.bad()) return DataLoss("cannot read checkpoint '" + path + "': read error");
  auto corrupt = [&](const std::string& why) {
    return DataLoss("checkpoint '" + path + "' is corrupt: " + why);
  };
  if (bytes.size() < kTrailerBytes ||
      std::memcmp(bytes.data() + bytes.size() - kTrailerBytes, kTrailerMagic, 8) != 0) {
    return corrupt("no dtrain checkpoint trailer at its end (" + std::to_string(bytes.size()) +
                   " bytes: torn, truncated or not a dtrain checkpoint)");
  }
  const char* trailer = bytes.data() + bytes.size() - kTrailerBytes;
  const uint64_t length = GetLittleEndian(trailer + 8);
  const uint64_t checksum = GetLittleEndian(trailer + 16);
  if (length != bytes.size() - kTrailerBytes) {
    return corrupt("the trailer records " + std::to_string(length) +
                   " bytes of archive, the file has " +
                   std::to_string(bytes.size() - kTrailerBytes));
  }
  if (Fnv1a64(bytes.data(), length) != checksum) return corrupt("checksum mismatch");
  bytes.resize(length);
  return bytes;
}

}  // namespace

std::vector<std::string> ListCheckpoints(const std::string& dir) {
  std::vector<std::string> found;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(kPrefix, 0) == 0 && name.size() > sizeof(kSuffix) &&
        name.compare(name.size() - 3, 3, kSuffix) == 0) {
      found.push_back(entry.path().string());
    }
  }
  std::sort(found.begin(), found.end());
  return found;
}

Status SaveCheckpoint(const std::string& dir, const LoopPosition& position,
                      torch::nn::Module& model, torch::optim::Optimizer& optimizer,
                      const SpecFingerprint& fingerprint, int keep_last) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Internal("cannot create checkpoint dir '" + dir + "': " + ec.message());
  char name[64];
  std::snprintf(name, sizeof(name), "%s%010lld%s", kPrefix,
                static_cast<long long>(position.global_step), kSuffix);
  const std::string path = (fs::path(dir) / name).string();
  StatusOr<std::string> bytes = Internal("not serialised");
  try {
    torch::serialize::OutputArchive archive;
    torch::serialize::OutputArchive model_archive, optimizer_archive;
    model.save(model_archive);
    optimizer.save(optimizer_archive);
    archive.write("model", model_archive);
    archive.write("optimizer", optimizer_archive);
    archive.write(
        "position",
        torch::tensor({position.epoch, position.micro_step, position.global_step}, torch::kLong));
    archive.write("spec_fingerprint", c10::IValue(fingerprint.ToJson()));
    bytes = Serialize("checkpoint '" + path + "'", archive);
  } catch (const std::exception& e) {
    return Internal("cannot serialise checkpoint '" + path + "': " + FirstLine(e));
  }
  if (!bytes.ok()) return bytes.status();
  std::string& contents = *bytes;
  const uint64_t length = contents.size();
  const uint64_t checksum = Fnv1a64(contents.data(), contents.size());
  contents.append(kTrailerMagic, sizeof(kTrailerMagic));
  PutLittleEndian(length, &contents);
  PutLittleEndian(checksum, &contents);
  DTRAIN_RETURN_IF_ERROR(WriteFileAtomically(path, contents));
  std::vector<std::string> all = ListCheckpoints(dir);
  for (size_t i = 0; i + static_cast<size_t>(keep_last) < all.size(); ++i) {
    fs::remove(all[i], ec);
  }
  return Status::Ok();
}

std::optional<std::string> FindLatestCheckpoint(const std::string& dir) {
  std::vector<std::string> all = ListCheckpoints(dir);
  if (all.empty()) return std::nullopt;
  return all.back();
}

Status LoadCheckpoint(const std::string& path, torch::nn::Module& model,
                      torch::optim::Optimizer& optimizer, const SpecFingerprint& expected,
                      LoopPosition* position) {
  DTRAIN_ASSIGN_OR_RETURN(std::string bytes, ReadIntactArchive(path));
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(bytes.data(), bytes.size());
    // Before anything is loaded: a checkpoint of another run must not become this run's state.
    c10::IValue stored;
    if (!archive.try_read("spec_fingerprint", stored) || !stored.isString()) {
      return FailedPrecondition("checkpoint '" + path +
                                "' records no spec fingerprint (written by an older dtrain-worker "
                                "or not by this job); run without --resume to start afresh");
    }
    StatusOr<SpecFingerprint> written = SpecFingerprint::FromJson(stored.toStringRef());
    if (!written.ok()) {
      return DataLoss("checkpoint '" + path + "': " + written.status().message());
    }
    const std::string differences = expected.Differences(*written);
    if (!differences.empty()) {
      return FailedPrecondition("checkpoint '" + path + "' was written by a different spec (" +
                                differences +
                                "); resume only a run of the same spec, or give this one its "
                                "own checkpoint.dir");
    }
    torch::serialize::InputArchive model_archive, optimizer_archive;
    archive.read("model", model_archive);
    archive.read("optimizer", optimizer_archive);
    // Archive reads replace a tensor's storage, shape included, so a checkpoint of another model
    // would load "successfully": compare every shape against the model as built from the spec.
    std::vector<std::pair<std::string, std::vector<int64_t>>> expected_shapes;
    for (const auto& p : model.named_parameters())
      expected_shapes.emplace_back(p.key(), p.value().sizes().vec());
    for (const auto& b : model.named_buffers())
      expected_shapes.emplace_back(b.key(), b.value().sizes().vec());
    model.load(model_archive);
    size_t i = 0;
    auto check = [&](const std::string& name, const torch::Tensor& t) -> Status {
      const auto& [want_name, want] = expected_shapes[i++];
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
    return DataLoss("cannot load checkpoint '" + path +
                    "' (does it belong to this job's model?): " + FirstLine(e));
  }
  return Status::Ok();
}

StatusOr<std::optional<std::string>> ResumeFromNewestIntact(
    const std::string& dir, torch::nn::Module& model, torch::optim::Optimizer& optimizer,
    const SpecFingerprint& expected, LoopPosition* position,
    const std::function<void(const std::string&)>& warn) {
  const std::vector<std::string> all = ListCheckpoints(dir);
  if (all.empty()) return std::optional<std::string>();
  std::string skipped;
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    // Only the integrity check decides whether to fall back: it runs before anything is loaded,
    // so a skipped file leaves the model and optimizer untouched.
    StatusOr<std::string> intact = ReadIntactArchive(*it);
    if (!intact.ok()) {
      warn("warning: skipping " + intact.status().message() +
           (std::next(it) != all.rend() ? "; falling back to the previous checkpoint" : ""));
      skipped += (skipped.empty() ? "" : ", ") + *it;
      continue;
    }
    DTRAIN_RETURN_IF_ERROR(LoadCheckpoint(*it, model, optimizer, expected, position));
    return std::optional<std::string>(*it);
  }
  return DataLoss("no intact checkpoint in '" + dir + "' (corrupt: " + skipped +
                  "); run without --resume to start afresh");
}

Status SaveModel(const std::string& path, torch::nn::Module& model) {
  StatusOr<std::string> bytes = Internal("not serialised");
  try {
    torch::serialize::OutputArchive archive;
    model.save(archive);
    bytes = Serialize("model '" + path + "'", archive);
  } catch (const std::exception& e) {
    return Internal("cannot serialise model '" + path + "': " + FirstLine(e));
  }
  if (!bytes.ok()) return bytes.status();
  return WriteFileAtomically(path, *bytes);
}

}  // namespace dtrain::trainer
