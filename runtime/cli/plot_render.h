// Line charts drawn with cairo into one SVG and one PNG (the same drawing, two surfaces): a grid
// of panels, each with its axes and grid lines, under one legend that gives each run a colour.
#ifndef DTRAIN_RUNTIME_CLI_PLOT_RENDER_H_
#define DTRAIN_RUNTIME_CLI_PLOT_RENDER_H_

#include <string>
#include <utility>
#include <vector>

#include "runtime/cli/plot_data.h"
#include "runtime/common/status.h"

namespace dtrain::cli {

struct PlotSeries {
  std::string label;  // the run; the same label gets the same colour in every panel
  Curve points;
};

struct PlotPanel {
  std::string title;
  std::string x_label;
  std::vector<PlotSeries> series;
  bool integer_x = false;  // x counts something (epochs): no ticks between whole numbers
  // A series without points is named in the panel's corner as "no data: <label>".
};

struct RenderedFiles {
  std::string svg;
  std::string png;
};

// Writes `<out_prefix>.svg` and `<out_prefix>.png` (the PNG at twice the SVG's pixel size).
// Errors name the file cairo could not write.
StatusOr<RenderedFiles> RenderPanels(const std::vector<PlotPanel>& panels,
                                     const std::string& out_prefix);

// Tick positions covering [lo, hi]: 1, 2 or 5 times a power of ten apart, about `target` of them.
std::vector<double> NiceTicks(double lo, double hi, int target);

}  // namespace dtrain::cli

#endif  // DTRAIN_RUNTIME_CLI_PLOT_RENDER_H_
