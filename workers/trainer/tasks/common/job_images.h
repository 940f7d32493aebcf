// The images a job's `data` section names, loaded the same way for every image task.
#ifndef DTRAIN_WORKERS_TRAINER_TASKS_COMMON_JOB_IMAGES_H_
#define DTRAIN_WORKERS_TRAINER_TASKS_COMMON_JOB_IMAGES_H_

#include "runtime/common/status.h"
#include "runtime/data/images/image_set.h"
#include "runtime/spec/sections/image_data.h"

namespace dtrain::trainer {

struct JobImages {
  data::ImageSet train;        // ImageFolder: every image; IDX: the train-* files
  data::ImageSet test;         // IDX: the t10k-* files, same shape as `train`; ImageFolder: empty
  bool separate_test = false;  // true for IDX: the task need not split a test set off `train`
};

// Loads `path` (the job's data.path) as d.source says. Errors name the path; an IDX test set
// whose images differ in shape from the training images is refused.
StatusOr<JobImages> LoadJobImages(const std::string& path, const ImageDataSpec& d);

}  // namespace dtrain::trainer

#endif  // DTRAIN_WORKERS_TRAINER_TASKS_COMMON_JOB_IMAGES_H_
