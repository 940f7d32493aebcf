// The style_transfer task (runtime/spec/tasks/style_transfer.h): every (content, style) pair of
// the job is one picture whose pixels are optimised against the perceptual loss. It runs its own
// loop (OwnLoopTask): the pairs are dealt out over the ranks round-robin, each rank optimises
// its share as one batch, one trainer step per iteration (the step's loss terms are summed over
// all pairs), and rank 0 gathers the pictures into output_dir:
//   results/<index>_<content>__<style>.png   one result per pair
//   contact_sheet.png                        content | style | result, one row per pair
//   intermediate/<index>_..._it<N>.png       every optimize.image_every iterations
#ifndef DTRAIN_WORKERS_TRAINER_TASKS_STYLE_TRANSFER_STYLE_TRANSFER_TASK_H_
#define DTRAIN_WORKERS_TRAINER_TASKS_STYLE_TRANSFER_STYLE_TRANSFER_TASK_H_

#include "workers/trainer/task_registry.h"

namespace dtrain::trainer {

void RegisterStyleTransferTask(TaskRegistry& registry);

}  // namespace dtrain::trainer

#endif  // DTRAIN_WORKERS_TRAINER_TASKS_STYLE_TRANSFER_STYLE_TRANSFER_TASK_H_
