// Learning rate as a pure function of progress, so resuming needs no scheduler state.
#ifndef DTRAIN_WORKERS_TRAINER_LR_SCHEDULE_H_
#define DTRAIN_WORKERS_TRAINER_LR_SCHEDULE_H_

#include <cstdint>

#include "runtime/spec/job_spec.h"

namespace dtrain::trainer {

// `step` counts optimizer steps from 0; `steps_per_epoch` > 0; total = epochs * steps_per_epoch.
// Linear warm-up over warmup_steps, then constant, step (x gamma every step_epochs epochs) or
// cosine decay from lr to min_lr over the remaining steps.
double LearningRateAt(const TrainSpec& train, int64_t step, int64_t steps_per_epoch);

}  // namespace dtrain::trainer

#endif  // DTRAIN_WORKERS_TRAINER_LR_SCHEDULE_H_
