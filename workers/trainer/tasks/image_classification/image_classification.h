// Image classification tasks from CS230 lecture 2:
//  - day_night: one sigmoid output, log-likelihood loss
//      L = -[y log(yhat) + (1 - y) log(1 - yhat)],  yhat = sigmoid(z)
//    computed in the numerically stable form max(z, 0) - z y + log(1 + exp(-|z|)).
//  - multiclass: K softmax outputs with cross-entropy.
// Data: an ImageFolder (split train/test by data.split; validation = test) or IDX files
// (train file split into train/validation by data.split; test = the t10k files).
#ifndef DTRAIN_WORKERS_TRAINER_TASKS_IMAGE_CLASSIFICATION_IMAGE_CLASSIFICATION_H_
#define DTRAIN_WORKERS_TRAINER_TASKS_IMAGE_CLASSIFICATION_IMAGE_CLASSIFICATION_H_

#include <memory>

#include "workers/trainer/task.h"
#include "workers/trainer/task_registry.h"

namespace dtrain::trainer {

// Mean over elements of the stable binary log-likelihood loss; `targets` in {0, 1}, same shape.
at::Tensor BinaryLogLikelihoodLoss(const at::Tensor& logits, const at::Tensor& targets);

StatusOr<std::unique_ptr<Task>> MakeImageClassificationTask(const JobSpec& spec,
                                                            const TaskContext& context);

// Registers the trainer side of day_night and multiclass.
void RegisterImageClassificationTasks(TaskRegistry& registry);

}  // namespace dtrain::trainer

#endif  // DTRAIN_WORKERS_TRAINER_TASKS_IMAGE_CLASSIFICATION_IMAGE_CLASSIFICATION_H_
