#include "workers/trainer/tasks/style_transfer/style_transfer_task.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "runtime/data/images/image_set.h"
#include "runtime/spec/tasks/style_transfer.h"
#include "workers/models/mobilenet_v2.h"
#include "workers/models/vgg19.h"
#include "workers/trainer/tasks/style_transfer/contact_sheet.h"
#include "workers/trainer/tasks/style_transfer/perceptual_loss.h"
#include "workers/trainer/tasks/style_transfer/pixel_optimizer.h"

namespace dtrain::trainer {
namespace {

namespace fs = std::filesystem;

// One result: which content and style files, by index into the spec's lists.
struct Pair {
  size_t content = 0;
  size_t style = 0;
  std::string name;  // "<index>_<content stem>__<style stem>"
};

std::string Resolve(const std::string& data_path, const std::string& file) {
  return fs::path(file).is_absolute() ? file : (fs::path(data_path) / file).string();
}

// deploy/fetch-style-model.sh's directory when network.weights is not given.
std::string DefaultMobileNetDir() {
  const char* models = std::getenv("DTRAIN_MODEL_DIR");
  const char* home = std::getenv("HOME");
  return (models ? std::string(models) : std::string(home ? home : "") + "/.cache/dtrain/models") +
         "/nsfwjs-4.4.0/mobilenet_v2";
}

StatusOr<std::shared_ptr<models::FeatureNetwork>> LoadNetwork(const StyleNetworkSpec& n) {
  if (n.name == StyleNetwork::kVgg19) {
    return models::LoadVgg19(n.weights, n.pooling == StylePooling::kAverage
                                            ? models::Pooling::kAverage
                                            : models::Pooling::kMax);
  }
  std::string dir = n.weights.empty() ? DefaultMobileNetDir() : n.weights;
  // Also accept the nsfwjs-4.4.0 directory the fetch script prints.
  if (!fs::exists(fs::path(dir) / models::kMobileNetV2ModelFile) &&
      fs::exists(fs::path(dir) / "mobilenet_v2" / models::kMobileNetV2ModelFile)) {
    dir = (fs::path(dir) / "mobilenet_v2").string();
  }
  StatusOr<std::shared_ptr<models::FeatureNetwork>> net = models::LoadMobileNetV2(dir);
  if (!net.ok() && n.weights.empty()) {
    return Status(net.status().code(),
                  "network.weights: not given and " + net.status().message() +
                      "; run deploy/fetch-style-model.sh or name its directory");
  }
  return net;
}

// A PNG or JPEG file as 1 x 3 x size x size floats in [0, 1].
StatusOr<at::Tensor> LoadImage(const std::string& field, const std::string& path, int size) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return InvalidArgument(field + ": cannot read '" + path + "'");
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  StatusOr<data::DecodedImage> image =
      data::DecodeImage(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), 3, path);
  if (!image.ok()) return InvalidArgument(field + ": " + image.status().message());
  std::vector<uint8_t> resized =
      data::ResizeBilinear(image->pixels.data(), image->height, image->width, 3, size, size);
  return torch::from_blob(resized.data(), {1, size, size, 3}, torch::kUInt8)
      .permute({0, 3, 1, 2})
      .to(torch::kFloat32)
      .div(255);
}

// N x 3 x H x W in [0, 1] -> N x H x W x 3 bytes on the CPU.
at::Tensor ToBytes(const at::Tensor& images) {
  return (images.detach().to(torch::kCPU).permute({0, 2, 3, 1}) * 255)
      .round()
      .clamp(0, 255)
      .to(torch::kUInt8)
      .contiguous();
}

style::RgbImage ToRgb(const at::Tensor& hwc) {  // H x W x 3 bytes
  style::RgbImage out;
  out.height = static_cast<int>(hwc.size(0));
  out.width = static_cast<int>(hwc.size(1));
  const at::Tensor c = hwc.contiguous();
  out.pixels.assign(c.data_ptr<uint8_t>(), c.data_ptr<uint8_t>() + c.numel());
  return out;
}

SummaryImage ToSummaryImage(const style::RgbImage& rgb) {
  SummaryImage out;
  out.width = rgb.width;
  out.height = rgb.height;
  out.channels = 3;
  out.pixels = rgb.pixels;
  return out;
}

class StyleTransferTask final : public OwnLoopTask {
 public:
  StyleTransferTask(const JobSpec& spec, const TaskContext& context,
                    std::shared_ptr<models::FeatureNetwork> network,
                    style::PerceptualLossOptions loss_options)
      : spec_(spec),
        task_(static_cast<const StyleTransferSpec&>(*spec.task_spec)),
        context_(context),
        network_(std::move(network)),
        loss_options_(std::move(loss_options)) {
    for (size_t c = 0; c < task_.data.content.size(); ++c) {
      for (size_t s = 0; s < task_.data.style.size(); ++s) {
        char index[16];
        std::snprintf(index, sizeof(index), "%03zu", pairs_.size());
        pairs_.push_back({c, s,
                          std::string(index) + "_" +
                              fs::path(task_.data.content[c]).stem().string() + "__" +
                              fs::path(task_.data.style[s]).stem().string()});
      }
    }
    for (size_t p = context.rank; p < pairs_.size(); p += context.world_size) mine_.push_back(p);
    share_ = (pairs_.size() + context.world_size - 1) / context.world_size;
  }

  int64_t planned_steps() const override { return task_.optimize.iterations; }
  std::string primary_metric() const override { return "style"; }
  std::vector<std::string> DataReport() const override {
    return {std::to_string(task_.data.content.size()) + " content x " +
                std::to_string(task_.data.style.size()) +
                " style image(s) = " + std::to_string(pairs_.size()) + " picture(s) at " +
                std::to_string(task_.data.image_size) + " x " +
                std::to_string(task_.data.image_size) + ", up to " + std::to_string(share_) +
                " per rank",
            "features: " + network_->Describe() + "; " + ToString(task_.optimize.optimizer) + ", " +
                std::to_string(task_.optimize.iterations) + " iterations"};
  }

  StatusOr<nlohmann::json> Run(LoopDriver& driver) override {
    const int size = task_.data.image_size;
    const torch::Device device =
        context_.use_cuda ? torch::Device(torch::kCUDA, context_.cuda_device) : torch::kCPU;
    std::vector<at::Tensor> contents, styles;
    for (size_t p : mine_) {
      const Pair& pair = pairs_[p];
      DTRAIN_ASSIGN_OR_RETURN(
          at::Tensor content,
          LoadImage("data.content[" + std::to_string(pair.content) + "]",
                    Resolve(spec_.data.path, task_.data.content[pair.content]), size));
      DTRAIN_ASSIGN_OR_RETURN(
          at::Tensor style,
          LoadImage("data.style[" + std::to_string(pair.style) + "]",
                    Resolve(spec_.data.path, task_.data.style[pair.style]), size));
      contents.push_back(content);
      styles.push_back(style);
    }
    const StyleOptimizeSpec& o = task_.optimize;
    // Every rank takes every step, also one without pictures (more ranks than pairs).
    double first_style = 0, last_style = 0;
    Status failed = Status::Ok();
    auto step = [&](const style::StylizeStep& s, const at::Tensor& pixels) -> bool {
      const double n = static_cast<double>(mine_.size());
      if (s.iteration == 1) first_style = s.style * n;
      last_style = s.style * n;
      OwnLoopStep report;
      report.loss = {s.total * n, n};
      report.metrics["content"] = {s.content * n, n};
      report.metrics["style"] = {s.style * n, n};
      report.metrics["tv"] = {s.tv * n, n};
      // Reported before the pictures, so TensorBoard shows them at this iteration's step.
      StatusOr<bool> keep_going = driver.Step(report);
      if (keep_going.ok() && o.image_every > 0 && s.iteration % o.image_every == 0) {
        failed = WritePictures(pixels, "intermediate", "_it" + std::to_string(s.iteration), false,
                               driver);
        if (!failed.ok()) return false;
      }
      if (!keep_going.ok()) failed = keep_going.status();
      return keep_going.ok() && *keep_going;
    };
    at::Tensor result;
    if (mine_.empty()) {
      style::StylizeStep idle;
      for (idle.iteration = 1; idle.iteration <= o.iterations; ++idle.iteration) {
        if (!step(idle, at::Tensor())) break;
      }
    } else {
      const at::Tensor content = torch::cat(contents).to(device);
      network_->to(device);
      style::PerceptualLoss loss(network_, loss_options_);
      loss.SetContent(content);
      loss.SetStyle(torch::cat(styles).to(device));
      style::StylizeOptions options;
      options.optimizer = o.optimizer == StyleOptimizer::kLbfgs ? style::PixelOptimizer::kLbfgs
                                                                : style::PixelOptimizer::kAdam;
      options.iterations = o.iterations;
      options.learning_rate = o.lr;
      options.noise_ratio = o.noise_ratio;
      options.seed = spec_.train.seed + mine_.front();
      result = style::Stylize(loss, content, options, step);
    }
    DTRAIN_RETURN_IF_ERROR(failed);
    DTRAIN_RETURN_IF_ERROR(WritePictures(result, "results", "", /*with_sheet=*/true, driver));

    // The style term over all pairs at the first and the last iteration.
    double sums[3] = {first_style, last_style, static_cast<double>(mine_.size())};
    DTRAIN_RETURN_IF_ERROR(
        context_.comm->AllReduce({sums, 3, comm::DataType::kFloat64}, comm::ReduceOp::kSum));
    nlohmann::json results;
    results["pictures"] = pairs_.size();
    results["style_loss_first"] = sums[0] / sums[2];
    results["style_loss_last"] = sums[1] / sums[2];
    results["style_loss_fall"] = sums[1] > 0 ? sums[0] / sums[1] : 0.0;
    results["contact_sheet"] = "contact_sheet.png";
    nlohmann::json files = nlohmann::json::array();
    for (const Pair& p : pairs_) {
      files.push_back({{"content", task_.data.content[p.content]},
                       {"style", task_.data.style[p.style]},
                       {"result", "results/" + p.name + ".png"}});
    }
    results["results"] = files;
    driver.Info("style loss " + std::to_string(sums[0] / sums[2]) + " -> " +
                std::to_string(sums[1] / sums[2]) + "; pictures in " + driver.output_dir());
    return results;
  }

 private:
  // Collective: gathers every rank's pictures (`pixels`: its share, undefined when it has none)
  // to rank 0, which writes <output_dir>/<folder>/<pair name><suffix>.png and, with
  // `with_sheet`, the contact sheet; TensorBoard shows each as "<folder>/<pair name>" (and
  // "results/contact_sheet") at the last reported step.
  Status WritePictures(const at::Tensor& pixels, const std::string& folder,
                       const std::string& suffix, bool with_sheet, LoopDriver& driver) {
    const std::string& output_dir = driver.output_dir();
    const int64_t size = task_.data.image_size;
    at::Tensor send = torch::zeros({static_cast<int64_t>(share_), size, size, 3}, torch::kUInt8);
    if (!mine_.empty())
      send.narrow(0, 0, static_cast<int64_t>(mine_.size())).copy_(ToBytes(pixels));
    at::Tensor gathered = torch::empty(
        {static_cast<int64_t>(context_.world_size * share_), size, size, 3}, torch::kUInt8);
    DTRAIN_RETURN_IF_ERROR(context_.comm->AllGather(
        {send.data_ptr(), static_cast<size_t>(send.numel()), comm::DataType::kUInt8},
        {gathered.data_ptr(), static_cast<size_t>(gathered.numel()), comm::DataType::kUInt8}));
    if (context_.rank != 0) return Status::Ok();
    const fs::path dir = fs::path(output_dir) / folder;
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return Internal("cannot create '" + dir.string() + "': " + ec.message());
    std::vector<std::vector<style::RgbImage>> rows;
    for (size_t p = 0; p < pairs_.size(); ++p) {
      // Pair p went to rank p % world, as its (p / world)-th picture.
      const int64_t slot =
          static_cast<int64_t>((p % context_.world_size) * share_ + p / context_.world_size);
      const style::RgbImage picture = ToRgb(gathered[slot]);
      DTRAIN_RETURN_IF_ERROR(
          style::WritePng((dir / (pairs_[p].name + suffix + ".png")).string(), picture));
      driver.Image({folder + "/" + pairs_[p].name, ToSummaryImage(picture)});
      if (!with_sheet) continue;
      std::vector<style::RgbImage> row;
      for (const auto& [field, file] : {std::pair<std::string, std::string>{
                                            "data.content", task_.data.content[pairs_[p].content]},
                                        {"data.style", task_.data.style[pairs_[p].style]}}) {
        DTRAIN_ASSIGN_OR_RETURN(at::Tensor image,
                                LoadImage(field, Resolve(spec_.data.path, file), size));
        row.push_back(ToRgb(ToBytes(image)[0]));
      }
      row.push_back(picture);
      rows.push_back(std::move(row));
    }
    if (!with_sheet) return Status::Ok();
    DTRAIN_ASSIGN_OR_RETURN(style::RgbImage sheet,
                            style::ComposeContactSheet(rows, static_cast<int>(size)));
    driver.Image({folder + "/contact_sheet", ToSummaryImage(sheet)});
    return style::WritePng((fs::path(output_dir) / "contact_sheet.png").string(), sheet);
  }

  const JobSpec& spec_;
  const StyleTransferSpec& task_;
  TaskContext context_;
  std::shared_ptr<models::FeatureNetwork> network_;
  style::PerceptualLossOptions loss_options_;
  std::vector<Pair> pairs_;
  std::vector<size_t> mine_;  // indices into pairs_ this rank optimises
  size_t share_ = 0;          // the most pairs any rank holds
};

StatusOr<std::unique_ptr<Task>> MakeStyleTransferTask(const JobSpec& spec,
                                                      const TaskContext& context) {
  const auto& task = static_cast<const StyleTransferSpec&>(*spec.task_spec);
  // Every rank checks every file, so a missing one fails all ranks alike, before any collective.
  for (const auto& [field, files] :
       {std::pair<const char*, const std::vector<std::string>*>{"data.content", &task.data.content},
        {"data.style", &task.data.style}}) {
    for (size_t i = 0; i < files->size(); ++i) {
      const std::string path = Resolve(spec.data.path, (*files)[i]);
      if (!fs::is_regular_file(path)) {
        return InvalidArgument(std::string(field) + "[" + std::to_string(i) + "]: no file '" +
                               path + "'");
      }
    }
  }
  DTRAIN_ASSIGN_OR_RETURN(std::shared_ptr<models::FeatureNetwork> network,
                          LoadNetwork(task.network));
  style::PerceptualLossOptions options;
  StatusOr<std::vector<int>> content_tap = network->ResolveTaps({task.network.content_layer});
  if (!content_tap.ok()) {
    return InvalidArgument("network.content_layer: " + content_tap.status().message());
  }
  options.content_tap = content_tap->front();
  StatusOr<std::vector<int>> style_taps = network->ResolveTaps(task.network.style_layers);
  if (!style_taps.ok()) {
    return InvalidArgument("network.style_layers: " + style_taps.status().message());
  }
  for (size_t i = 0; i < style_taps->size(); ++i) {
    options.style_taps.push_back({(*style_taps)[i], task.network.style_layer_weights[i]});
  }
  options.content_weight = task.loss.content_weight;
  options.style_weight = task.loss.style_weight;
  options.tv_weight = task.loss.tv_weight;
  return std::unique_ptr<Task>(
      std::make_unique<StyleTransferTask>(spec, context, std::move(network), std::move(options)));
}

}  // namespace

void RegisterStyleTransferTask(TaskRegistry& registry) {
  (void)registry.Register("style_transfer", MakeStyleTransferTask);
}

}  // namespace dtrain::trainer
