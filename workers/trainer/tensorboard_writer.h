// TensorBoard event files (torch-free): scalars and images of one run, written by rank 0 into
// `<output_dir>/tensorboard/` so `tensorboard --logdir runs/` shows every run, resumed runs
// included (a resumed run opens a new file; TensorBoard merges the files of one directory).
//
// The format is TensorFlow's: TFRecord framing (tensorboard_record.h) around Event messages
// (proto/tensorboard/event.proto, encoded by tensorboard_event.h: the worker must not link
// libprotobuf, tests/boundaries checks it).
//
// Not thread-safe: one thread (the trainer's, through ProgressReporter) writes.
#ifndef DTRAIN_WORKERS_TRAINER_TENSORBOARD_WRITER_H_
#define DTRAIN_WORKERS_TRAINER_TENSORBOARD_WRITER_H_

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "runtime/common/status.h"

namespace dtrain::trainer {

// An 8-bit image, rows top to bottom, `channels` interleaved values per pixel:
// 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA.
struct SummaryImage {
  int width = 0;
  int height = 0;
  int channels = 3;
  std::vector<uint8_t> pixels;  // width * height * channels
};

// Bounds on an image summary's sides: TensorBoard shows thumbnails, and a task's mistake
// (a whole data set as one image) must not fill the disk.
constexpr int kMaxSummaryImageSide = 4096;

// The folder of output_dir that holds a run's event files.
constexpr char kTensorBoardSubdir[] = "tensorboard";
// Event files start so; TensorBoard only reads files whose name contains "tfevents".
constexpr char kEventFilePrefix[] = "events.out.tfevents.";

class TensorBoardWriter {
 public:
  // Creates `dir` when missing and a new event file in it,
  // events.out.tfevents.<unix seconds>.<host>.<pid>, starting with the file-version record.
  static StatusOr<std::unique_ptr<TensorBoardWriter>> Open(const std::string& dir);
  ~TensorBoardWriter();
  TensorBoardWriter(const TensorBoardWriter&) = delete;
  TensorBoardWriter& operator=(const TensorBoardWriter&) = delete;

  // Tags name curves: "train/loss", "validation/accuracy". A tag must be non-empty and at most
  // 256 bytes. Values are stored as float (TensorBoard's simple_value).
  Status AddScalar(const std::string& tag, int64_t step, double value);
  // PNG-encodes `image`; its sides must lie in [1, kMaxSummaryImageSide] and its pixels match.
  Status AddImage(const std::string& tag, int64_t step, const SummaryImage& image);
  // Pushes written records to the file (records are also flushed every few seconds).
  Status Flush();

  const std::string& path() const { return path_; }

 private:
  TensorBoardWriter(std::string path, std::FILE* file);
  Status WriteRecord(const std::string& serialized_event);

  std::string path_;
  std::FILE* file_;
  double last_flush_s_;
};

}  // namespace dtrain::trainer

#endif  // DTRAIN_WORKERS_TRAINER_TENSORBOARD_WRITER_H_
