// Writes a labelled day/night ImageFolder. No such photo set exists offline, so scenes are
// synthesised: sky colour and gradient, sun or moon, stars, lit windows, noise, dawn/dusk hard
// cases, over real photos from Debian's opencv-doc when present. Day and night must differ in
// more than mean brightness: a classifier on brightness alone does clearly worse.
#ifndef DTRAIN_RUNTIME_DATA_IMAGES_DAY_NIGHT_GENERATOR_H_
#define DTRAIN_RUNTIME_DATA_IMAGES_DAY_NIGHT_GENERATOR_H_

#include <cstdint>
#include <string>

#include "runtime/common/status.h"

namespace dtrain::data {

struct DayNightOptions {
  std::string out_dir;  // gets day/ and night/ sub-folders of PNGs
  int count = 2400;     // total images, split evenly between the classes
  int size = 96;        // square side in pixels
  uint64_t seed = 1;
  // Real photos used as foregrounds/landscapes; missing files are simply not used.
  std::string photo_dir = "/usr/share/doc/opencv-doc/examples/data";
};

struct DayNightReport {
  int day = 0;
  int night = 0;
  int hard_cases = 0;   // dawn/dusk scenes
  int photos_used = 0;  // distinct real photos found and used
};

// How `count` images divide between the classes: day gets the odd one. Exact for every int.
struct DayNightCounts {
  int day = 0;
  int night = 0;
};
DayNightCounts SplitDayNight(int count);

// The most bytes `count` images of `size` x `size` take as PNGs (nothing compressing): the
// generator refuses to start when this exceeds the free space where it writes.
double DayNightBytesUpperBound(int count, int size);

// Writes atomically: into "<out_dir>.tmp-<pid>", renamed to out_dir when complete, so a crash
// never leaves a half-written set that later looks complete. Fails if out_dir exists. Temporary
// directories of killed runs (their pid is gone) are removed first. RESOURCE_EXHAUSTED, with
// nothing written, when the images might not fit in the file system's free space.
StatusOr<DayNightReport> GenerateDayNight(const DayNightOptions& options);

}  // namespace dtrain::data

#endif  // DTRAIN_RUNTIME_DATA_IMAGES_DAY_NIGHT_GENERATOR_H_
