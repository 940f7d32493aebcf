// The trigger_word task (CS230 lecture 4): spectrograms of clips in, one sigmoid per output step
// out, y = 1 for data.label_steps steps after each trigger ends; per-step binary cross-entropy.
// Data: data.path/train (split into training and validation by data.split), holdout/ (test:
// voices never trained on) and real/ (test: real recordings), each in the layout of
// runtime/data/audio/trigger_labels.h. Evaluation is by events (event_metrics.h).
//
// BatchNorm across ranks: in training each rank normalises with its own micro-batch's
// statistics (as PyTorch DDP without SyncBatchNorm) and updates its own running statistics;
// before every evaluation and checkpoint the trainer broadcasts rank 0's buffers
// (Reducer::SyncBuffers), so every rank evaluates, and model.pt holds, the same statistics.
#ifndef DTRAIN_WORKERS_TRAINER_TASKS_TRIGGER_WORD_TRIGGER_WORD_H_
#define DTRAIN_WORKERS_TRAINER_TASKS_TRIGGER_WORD_TRIGGER_WORD_H_

#include <memory>
#include <string>
#include <vector>

#include "runtime/data/audio/spectrogram.h"
#include "runtime/spec/tasks/trigger_word.h"
#include "workers/trainer/task.h"
#include "workers/trainer/task_registry.h"

namespace dtrain::trainer {

// The normalised log-power spectrogram of mono samples at the job's rate, cut or zero-padded to
// data.clip_seconds: data.input_steps() x data.frequencies().
data::Spectrogram ClipFeatures(const data::Stft& stft, const TriggerWordDataSpec& data,
                               std::vector<float> samples);

StatusOr<std::unique_ptr<Task>> MakeTriggerWordTask(const JobSpec& spec,
                                                    const TaskContext& context);

void RegisterTriggerWordTask(TaskRegistry& registry);

}  // namespace dtrain::trainer

#endif  // DTRAIN_WORKERS_TRAINER_TASKS_TRIGGER_WORD_TRIGGER_WORD_H_
