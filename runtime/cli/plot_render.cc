#include "runtime/cli/plot_render.h"

#include <cairo-svg.h>
#include <cairo.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <memory>

namespace dtrain::cli {
namespace {

constexpr int kPanelWidth = 560;
constexpr int kPanelHeight = 340;
constexpr int kColumns = 2;
constexpr double kPngScale = 2.0;  // crisp on high-density screens
// The legend: one entry per run, in rows across the figure above the panels.
constexpr int kLegendEntryWidth = 280;
constexpr int kLegendRowHeight = 20;
constexpr int kLegendPadding = 12;
constexpr size_t kLegendLabelChars = 36;
// Inside a panel: room for the title, tick labels and the axis label.
constexpr double kLeft = 70, kRight = 20, kTop = 36, kBottom = 52;

// Tableau 10: distinguishable, and readable for the common colour blindnesses.
constexpr unsigned kPalette[] = {0x4E79A7, 0xF28E2B, 0xE15759, 0x76B7B2, 0x59A14F,
                                 0xEDC948, 0xB07AA1, 0xFF9DA7, 0x9C755F, 0xBAB0AC};

void SetColour(cairo_t* cr, unsigned rgb, double alpha = 1.0) {
  cairo_set_source_rgba(cr, ((rgb >> 16) & 0xFF) / 255.0, ((rgb >> 8) & 0xFF) / 255.0,
                        (rgb & 0xFF) / 255.0, alpha);
}

std::string FormatTick(double v, double step) {
  char buf[32];
  const double magnitude = std::max(std::abs(v), std::abs(step));
  if (magnitude != 0 && (magnitude >= 1e6 || magnitude < 1e-3)) {
    std::snprintf(buf, sizeof(buf), "%.2g", v);
  } else {
    const int decimals = std::max(0, static_cast<int>(std::ceil(-std::log10(step) - 1e-9)));
    std::snprintf(buf, sizeof(buf), "%.*f", std::min(decimals, 6), v);
  }
  return buf;
}

void Text(cairo_t* cr, const std::string& text, double x, double y, double size, double align_x,
          bool bold = false, double rotate = 0) {
  cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL,
                         bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, size);
  cairo_text_extents_t extents;
  cairo_text_extents(cr, text.c_str(), &extents);
  cairo_save(cr);
  cairo_translate(cr, x, y);
  cairo_rotate(cr, rotate);
  cairo_move_to(cr, -extents.x_advance * align_x, 0);
  cairo_show_text(cr, text.c_str());
  cairo_restore(cr);
}

std::string Shortened(const std::string& label) {
  return label.size() > kLegendLabelChars ? label.substr(0, kLegendLabelChars - 1) + "…" : label;
}

// Runs in order of first appearance: the colour of each and the legend's order.
std::vector<std::string> RunLabels(const std::vector<PlotPanel>& panels) {
  std::vector<std::string> labels;
  for (const auto& panel : panels) {
    for (const auto& s : panel.series) {
      if (std::find(labels.begin(), labels.end(), s.label) == labels.end()) {
        labels.push_back(s.label);
      }
    }
  }
  return labels;
}

int LegendHeight(size_t runs, int width) {
  if (runs == 0) return 0;
  const size_t per_row = std::max(1, width / kLegendEntryWidth);
  const size_t rows = (runs + per_row - 1) / per_row;
  return static_cast<int>(rows) * kLegendRowHeight + 2 * kLegendPadding;
}

struct Range {
  double lo = std::numeric_limits<double>::infinity();
  double hi = -std::numeric_limits<double>::infinity();
  void Add(double v) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  bool empty() const { return !(lo <= hi); }
};

void DrawPanel(cairo_t* cr, const PlotPanel& panel, const std::map<std::string, unsigned>& colours,
               double ox, double oy) {
  const double x0 = ox + kLeft, x1 = ox + kPanelWidth - kRight;
  const double y0 = oy + kTop, y1 = oy + kPanelHeight - kBottom;
  SetColour(cr, 0x222222);
  Text(cr, panel.title, ox + kPanelWidth / 2.0, oy + 22, 14, 0.5, /*bold=*/true);

  Range xr, yr;
  for (const auto& s : panel.series) {
    for (const auto& [x, y] : s.points) {
      xr.Add(x);
      yr.Add(y);
    }
  }
  cairo_set_line_width(cr, 1);
  SetColour(cr, 0x888888);
  cairo_rectangle(cr, x0, y0, x1 - x0, y1 - y0);
  cairo_stroke(cr);
  if (xr.empty()) {
    SetColour(cr, 0x888888);
    Text(cr, "no data", (x0 + x1) / 2, (y0 + y1) / 2, 13, 0.5);
    return;
  }
  if (xr.hi == xr.lo) xr.hi = xr.lo + 1;
  if (yr.hi == yr.lo) {
    const double pad = yr.lo == 0 ? 1 : std::abs(yr.lo) * 0.05;
    yr.lo -= pad;
    yr.hi += pad;
  }
  const double ypad = (yr.hi - yr.lo) * 0.05;
  yr.lo -= ypad;
  yr.hi += ypad;
  auto px = [&](double x) { return x0 + (x - xr.lo) / (xr.hi - xr.lo) * (x1 - x0); };
  auto py = [&](double y) { return y1 - (y - yr.lo) / (yr.hi - yr.lo) * (y1 - y0); };

  // Grid lines and tick labels.
  std::vector<double> xticks = NiceTicks(xr.lo, xr.hi, 6);
  if (panel.integer_x && xticks.size() > 1 && xticks[1] - xticks[0] < 1) {
    xticks.clear();
    for (double t = std::ceil(xr.lo); t <= xr.hi; ++t) xticks.push_back(t);
  }
  const std::vector<double> yticks = NiceTicks(yr.lo, yr.hi, 5);
  const double xstep = xticks.size() > 1 ? xticks[1] - xticks[0] : 1;
  const double ystep = yticks.size() > 1 ? yticks[1] - yticks[0] : 1;
  for (double t : xticks) {
    SetColour(cr, 0xDDDDDD);
    cairo_move_to(cr, px(t), y0);
    cairo_line_to(cr, px(t), y1);
    cairo_stroke(cr);
    SetColour(cr, 0x444444);
    Text(cr, FormatTick(t, xstep), px(t), y1 + 16, 11, 0.5);
  }
  for (double t : yticks) {
    SetColour(cr, 0xDDDDDD);
    cairo_move_to(cr, x0, py(t));
    cairo_line_to(cr, x1, py(t));
    cairo_stroke(cr);
    SetColour(cr, 0x444444);
    Text(cr, FormatTick(t, ystep), x0 - 6, py(t) + 4, 11, 1.0);
  }
  SetColour(cr, 0x444444);
  Text(cr, panel.x_label, (x0 + x1) / 2, y1 + 36, 12, 0.5);

  // The curves, clipped to the plot area; a lone point is drawn as a dot.
  cairo_save(cr);
  cairo_rectangle(cr, x0, y0, x1 - x0, y1 - y0);
  cairo_clip(cr);
  cairo_set_line_width(cr, 1.8);
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
  for (const auto& s : panel.series) {
    if (s.points.empty()) continue;
    SetColour(cr, colours.at(s.label));
    for (size_t i = 0; i < s.points.size(); ++i) {
      const double x = px(s.points[i].first), y = py(s.points[i].second);
      if (i == 0) {
        cairo_move_to(cr, x, y);
      } else {
        cairo_line_to(cr, x, y);
      }
    }
    cairo_stroke(cr);
    if (s.points.size() <= 50) {  // per-epoch curves: mark the measured points
      for (const auto& [x, y] : s.points) {
        cairo_arc(cr, px(x), py(y), 3, 0, 2 * M_PI);
        cairo_fill(cr);
      }
    }
  }
  cairo_restore(cr);

  // A run without data for this panel is named in its corner; the colours are in the figure's
  // legend above the panels, where no curve can hide under it.
  double ny = y0 + 16;
  for (const auto& s : panel.series) {
    if (!s.points.empty()) continue;
    SetColour(cr, colours.at(s.label));
    Text(cr, "no data: " + Shortened(s.label), x0 + 8, ny, 11, 0.0);
    ny += 16;
  }
}

void DrawAll(cairo_t* cr, const std::vector<PlotPanel>& panels, int width, int height) {
  SetColour(cr, 0xFFFFFF);
  cairo_rectangle(cr, 0, 0, width, height);
  cairo_fill(cr);
  const std::vector<std::string> labels = RunLabels(panels);
  std::map<std::string, unsigned> colours;
  const size_t palette = sizeof(kPalette) / sizeof(kPalette[0]);
  for (size_t i = 0; i < labels.size(); ++i) colours[labels[i]] = kPalette[i % palette];

  const size_t per_row = std::max(1, width / kLegendEntryWidth);
  for (size_t i = 0; i < labels.size(); ++i) {
    const double x = kLeft + static_cast<double>(i % per_row) * kLegendEntryWidth;
    const double y = kLegendPadding + static_cast<double>(i / per_row) * kLegendRowHeight + 14;
    SetColour(cr, colours.at(labels[i]));
    cairo_rectangle(cr, x, y - 8, 18, 7);
    cairo_fill(cr);
    SetColour(cr, 0x222222);
    Text(cr, Shortened(labels[i]), x + 26, y, 13, 0.0);
  }
  const double top = LegendHeight(labels.size(), width);
  for (size_t i = 0; i < panels.size(); ++i) {
    DrawPanel(cr, panels[i], colours, static_cast<double>((i % kColumns) * kPanelWidth),
              top + static_cast<double>((i / kColumns) * kPanelHeight));
  }
}

struct SurfaceCloser {
  void operator()(cairo_surface_t* s) const { cairo_surface_destroy(s); }
};
struct ContextCloser {
  void operator()(cairo_t* c) const { cairo_destroy(c); }
};
using Surface = std::unique_ptr<cairo_surface_t, SurfaceCloser>;
using Context = std::unique_ptr<cairo_t, ContextCloser>;

Status CairoError(const std::string& path, cairo_status_t status) {
  return Internal("cannot write " + path + ": " + cairo_status_to_string(status));
}

}  // namespace

std::vector<double> NiceTicks(double lo, double hi, int target) {
  std::vector<double> ticks;
  if (!(hi > lo) || !std::isfinite(lo) || !std::isfinite(hi) || target < 1) return ticks;
  const double raw = (hi - lo) / target;
  const int exponent = static_cast<int>(std::floor(std::log10(raw)));
  const double power = std::pow(10.0, std::abs(exponent));
  double multiple = 10;
  for (double m : {1.0, 2.0, 5.0}) {
    if ((exponent < 0 ? m / power : m * power) >= raw) {
      multiple = m;
      break;
    }
  }
  // Tick k is k * multiple * 10^exponent, divided rather than multiplied by a negative power of
  // ten so that 0.3 prints and compares as 0.3.
  auto tick = [&](double k) { return exponent < 0 ? k * multiple / power : k * multiple * power; };
  const double step = tick(1);
  for (double k = std::ceil(lo / step); tick(k) <= hi + step * 1e-9; ++k) {
    ticks.push_back(tick(k) + 0.0);  // + 0.0: -0 becomes 0, never printed "-0.0"
  }
  return ticks;
}

StatusOr<RenderedFiles> RenderPanels(const std::vector<PlotPanel>& panels,
                                     const std::string& out_prefix) {
  const int rows = static_cast<int>((panels.size() + kColumns - 1) / kColumns);
  const int width = kPanelWidth * kColumns;
  const int height =
      LegendHeight(RunLabels(panels).size(), width) + kPanelHeight * std::max(1, rows);
  RenderedFiles files{out_prefix + ".svg", out_prefix + ".png"};
  {
    Surface svg(cairo_svg_surface_create(files.svg.c_str(), width, height));
    Context cr(cairo_create(svg.get()));
    DrawAll(cr.get(), panels, width, height);
    cr.reset();
    cairo_surface_finish(svg.get());
    if (cairo_surface_status(svg.get()) != CAIRO_STATUS_SUCCESS) {
      return CairoError(files.svg, cairo_surface_status(svg.get()));
    }
  }
  Surface png(cairo_image_surface_create(CAIRO_FORMAT_ARGB32, static_cast<int>(width * kPngScale),
                                         static_cast<int>(height * kPngScale)));
  Context cr(cairo_create(png.get()));
  cairo_scale(cr.get(), kPngScale, kPngScale);
  DrawAll(cr.get(), panels, width, height);
  cr.reset();
  const cairo_status_t written = cairo_surface_write_to_png(png.get(), files.png.c_str());
  if (written != CAIRO_STATUS_SUCCESS) return CairoError(files.png, written);
  return files;
}

}  // namespace dtrain::cli
