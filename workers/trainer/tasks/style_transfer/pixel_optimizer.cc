#include "workers/trainer/tasks/style_transfer/pixel_optimizer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>

namespace dtrain::style {

at::Tensor InitialImage(const at::Tensor& content, double noise_ratio, uint64_t seed) {
  at::Generator generator = at::detail::createCPUGenerator(seed);
  const at::Tensor noise =
      at::rand(content.sizes(), generator, content.options().device(torch::kCPU))
          .to(content.device());
  return (noise_ratio * noise + (1 - noise_ratio) * content).clamp(0, 1);
}

at::Tensor Stylize(const PerceptualLoss& loss, const at::Tensor& content,
                   const StylizeOptions& options, const StylizeObserver& observer) {
  at::Tensor pixels =
      InitialImage(content.detach(), options.noise_ratio, options.seed).requires_grad_(true);
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  if (options.optimizer == PixelOptimizer::kAdam) {
    optimizer = std::make_unique<torch::optim::Adam>(
        std::vector<at::Tensor>{pixels}, torch::optim::AdamOptions(options.learning_rate));
  } else {
    // One quasi-Newton step per iteration; the curvature history lives on in the optimizer.
    optimizer = std::make_unique<torch::optim::LBFGS>(
        std::vector<at::Tensor>{pixels},
        torch::optim::LBFGSOptions(options.learning_rate).max_iter(1).history_size(50));
  }
  StylizeStep step;
  for (int it = 1; it <= options.iterations; ++it) {
    step = StylizeStep{};
    step.iteration = it;
    auto closure = [&]() -> at::Tensor {
      optimizer->zero_grad();
      const LossTerms terms = loss.Compute(pixels);
      terms.total.backward();
      step.content = terms.content.item<double>();
      step.style = terms.style.item<double>();
      step.tv = terms.tv.item<double>();
      step.total = terms.total.item<double>();
      return terms.total;
    };
    optimizer->step(closure);
    if (!std::isfinite(step.total)) {
      throw std::runtime_error("style transfer: the loss became non-finite at iteration " +
                               std::to_string(it) + " (lower the learning rate?)");
    }
    {
      torch::NoGradGuard no_grad;
      pixels.clamp_(0, 1);
    }
    if (observer && !observer(step, pixels.detach())) break;
  }
  return pixels.detach();
}

}  // namespace dtrain::style
