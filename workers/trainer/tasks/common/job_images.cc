#include "workers/trainer/tasks/common/job_images.h"

#include <string>

namespace dtrain::trainer {

StatusOr<JobImages> LoadJobImages(const std::string& path, const ImageDataSpec& d) {
  JobImages images;
  if (d.source == DataSource::kImageFolder) {
    data::ImageFolderOptions options;
    options.root = path;
    options.height = d.height;
    options.width = d.width;
    options.channels = d.channels;
    options.skip_corrupt = d.skip_corrupt;
    DTRAIN_ASSIGN_OR_RETURN(images.train, data::LoadImageFolder(options));
    return images;
  }
  DTRAIN_ASSIGN_OR_RETURN(images.train, data::LoadIdxDir(path, "train"));
  DTRAIN_ASSIGN_OR_RETURN(images.test, data::LoadIdxDir(path, "t10k"));
  images.separate_test = true;
  const data::ImageSet& a = images.train;
  const data::ImageSet& b = images.test;
  if (b.height != a.height || b.width != a.width || b.channels != a.channels) {
    return InvalidArgument("test images in '" + path + "' are " + std::to_string(b.height) + "x" +
                           std::to_string(b.width) + "x" + std::to_string(b.channels) +
                           ", the train images " + std::to_string(a.height) + "x" +
                           std::to_string(a.width) + "x" + std::to_string(a.channels) +
                           ": they must have one shape");
  }
  return images;
}

}  // namespace dtrain::trainer
