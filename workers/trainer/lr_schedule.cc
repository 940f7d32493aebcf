#include "workers/trainer/lr_schedule.h"

#include <algorithm>
#include <cmath>

namespace dtrain::trainer {

double LearningRateAt(const TrainSpec& train, int64_t step, int64_t steps_per_epoch) {
  const double base = train.optimizer.lr;
  const LrScheduleSpec& s = train.lr_schedule;
  if (s.warmup_steps > 0 && step < s.warmup_steps) {
    return base * static_cast<double>(step + 1) / static_cast<double>(s.warmup_steps);
  }
  switch (s.kind) {
    case LrScheduleKind::kConstant:
      return base;
    case LrScheduleKind::kStep: {
      const int64_t epoch = step / std::max<int64_t>(1, steps_per_epoch);
      return base * std::pow(s.gamma, static_cast<double>(epoch / s.step_epochs));
    }
    case LrScheduleKind::kCosine: {
      const int64_t total = static_cast<int64_t>(train.epochs) * steps_per_epoch;
      const int64_t span = std::max<int64_t>(1, total - s.warmup_steps);
      const double t = std::clamp(
          static_cast<double>(step - s.warmup_steps) / static_cast<double>(span), 0.0, 1.0);
      return s.min_lr + 0.5 * (base - s.min_lr) * (1.0 + std::cos(M_PI * t));
    }
  }
  return base;
}

}  // namespace dtrain::trainer
