// Style transfer by optimising an image's pixels (not network weights) against a PerceptualLoss:
// start from the content image mixed with noise, take Adam or L-BFGS steps on the pixels, and
// clamp them to [0, 1] after every step (projected gradient descent).
#ifndef DTRAIN_WORKERS_TRAINER_TASKS_STYLE_TRANSFER_PIXEL_OPTIMIZER_H_
#define DTRAIN_WORKERS_TRAINER_TASKS_STYLE_TRANSFER_PIXEL_OPTIMIZER_H_

#include <cstdint>
#include <functional>

#include "workers/trainer/tasks/style_transfer/perceptual_loss.h"

namespace dtrain::style {

enum class PixelOptimizer { kAdam, kLbfgs };

struct StylizeOptions {
  PixelOptimizer optimizer = PixelOptimizer::kAdam;
  int iterations = 200;  // optimizer steps (one loss evaluation each, also for L-BFGS)
  // Adam's step in pixel units (pixels are in [0, 1]); L-BFGS's is a multiplier of its own
  // quasi-Newton step (1 is the textbook choice).
  double learning_rate = 0.02;
  // The start: noise_ratio * U[0, 1) noise + (1 - noise_ratio) * content.
  double noise_ratio = 0;
  uint64_t seed = 0;
};

// One iteration's unweighted terms and weighted total, measured before that step's update.
struct StylizeStep {
  int iteration = 0;  // 1-based
  double content = 0, style = 0, tv = 0, total = 0;
};

// `content`: N x 3 x H x W in [0, 1]; the mix the optimisation starts from.
at::Tensor InitialImage(const at::Tensor& content, double noise_ratio, uint64_t seed);

// Called after every step with its terms and the current pixels (not to be modified); false
// stops the optimisation after this step.
using StylizeObserver = std::function<bool(const StylizeStep&, const at::Tensor& pixels)>;

// Runs the optimisation and returns the final pixels (N x 3 x H x W in [0, 1], no grad). `loss`
// must have its targets set, its content target from `content`. Throws std::runtime_error when a
// loss becomes non-finite, naming the iteration.
at::Tensor Stylize(const PerceptualLoss& loss, const at::Tensor& content,
                   const StylizeOptions& options, const StylizeObserver& observer);

}  // namespace dtrain::style

#endif  // DTRAIN_WORKERS_TRAINER_TASKS_STYLE_TRANSFER_PIXEL_OPTIMIZER_H_
