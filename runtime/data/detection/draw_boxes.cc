#include "runtime/data/detection/draw_boxes.h"

#include <stb_easy_font.h>
#include <stb_image_write.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace dtrain::data {
namespace {

// Distinct, saturated colours by class index (cycled).
constexpr uint8_t kPalette[][3] = {{255, 56, 56},  {56, 200, 255}, {255, 210, 40},  {80, 230, 80},
                                   {255, 90, 220}, {255, 150, 40}, {140, 110, 255}, {40, 255, 200}};

void FillRect(int x0, int y0, int x1, int y1, const uint8_t* rgb, DecodedImage* image) {
  x0 = std::max(x0, 0), y0 = std::max(y0, 0);
  x1 = std::min(x1, image->width), y1 = std::min(y1, image->height);
  for (int y = y0; y < y1; ++y) {
    for (int x = x0; x < x1; ++x) {
      uint8_t* p = image->pixels.data() + (static_cast<size_t>(y) * image->width + x) * 3;
      std::copy_n(rgb, 3, p);
    }
  }
}

void DrawText(int x, int y, const std::string& text, int scale, const uint8_t* rgb,
              DecodedImage* image) {
  // stb_easy_font emits quads (4 vertices of x, y, z floats and 4 colour bytes each).
  struct Vertex {
    float x, y, z;
    unsigned char color[4];
  };
  std::vector<Vertex> vertices(text.size() * 4 * 40);
  unsigned char color[4] = {255, 255, 255, 255};
  std::string copy = text;
  const int quads = stb_easy_font_print(0, 0, copy.data(), color, vertices.data(),
                                        static_cast<int>(vertices.size() * sizeof(Vertex)));
  for (int q = 0; q < quads; ++q) {
    const Vertex& a = vertices[q * 4];
    const Vertex& c = vertices[q * 4 + 2];
    FillRect(x + static_cast<int>(a.x * scale), y + static_cast<int>(a.y * scale),
             x + static_cast<int>(c.x * scale), y + static_cast<int>(c.y * scale), rgb, image);
  }
}

}  // namespace

void DrawDetections(const std::vector<Detection>& detections,
                    const std::vector<std::string>& class_names, int text_scale,
                    DecodedImage* image) {
  if (image->channels != 3) return;
  const int W = image->width, H = image->height;
  const int thickness = std::max(1, std::min(W, H) / 200);
  const uint8_t white[3] = {255, 255, 255};
  const uint8_t black[3] = {0, 0, 0};
  // Lowest score first, so the most confident boxes and labels end up on top.
  std::vector<Detection> order = detections;
  std::stable_sort(order.begin(), order.end(),
                   [](const Detection& a, const Detection& b) { return a.score < b.score; });
  for (const Detection& d : order) {
    const uint8_t* rgb = kPalette[static_cast<size_t>(std::max(0, d.cls)) % std::size(kPalette)];
    const int x0 = static_cast<int>(std::lround(d.box.x0() * W));
    const int x1 = static_cast<int>(std::lround(d.box.x1() * W));
    const int y0 = static_cast<int>(std::lround(d.box.y0() * H));
    const int y1 = static_cast<int>(std::lround(d.box.y1() * H));
    FillRect(x0, y0, x1, y0 + thickness, rgb, image);
    FillRect(x0, y1 - thickness, x1, y1, rgb, image);
    FillRect(x0, y0, x0 + thickness, y1, rgb, image);
    FillRect(x1 - thickness, y0, x1, y1, rgb, image);

    const std::string name = d.cls >= 0 && d.cls < static_cast<int>(class_names.size())
                                 ? class_names[d.cls]
                                 : std::to_string(d.cls);
    char label[128];
    std::snprintf(label, sizeof(label), "%s %.2f", name.c_str(), d.score);
    std::string text = label;
    const int text_w = stb_easy_font_width(text.data()) * text_scale;
    const int text_h = 9 * text_scale;  // glyphs are 7 rows plus descenders
    // The tab sits above the box, or inside its top when the box touches the image's top.
    const int tab_y = y0 - text_h - 2 >= 0 ? y0 - text_h - 2 : y0;
    FillRect(x0, tab_y, x0 + text_w + 4, tab_y + text_h + 2, rgb, image);
    const bool light = rgb[0] * 0.3 + rgb[1] * 0.59 + rgb[2] * 0.11 > 150;
    DrawText(x0 + 2, tab_y + 2, text, text_scale, light ? black : white, image);
  }
}

DecodedImage RenderDetections(const DecodedImage& image, const std::vector<Detection>& detections,
                              const std::vector<std::string>& class_names, int min_side) {
  DecodedImage canvas = image;
  const int shorter = std::min(image.width, image.height);
  if (shorter > 0 && shorter < min_side) {
    const double scale =
        std::min(static_cast<double>(min_side) / shorter,
                 static_cast<double>(kMaxRenderedSide) / std::max(image.width, image.height));
    canvas.width = static_cast<int>(image.width * scale);
    canvas.height = static_cast<int>(image.height * scale);
    canvas.pixels = ResizeBilinear(image.pixels.data(), image.height, image.width, 3, canvas.height,
                                   canvas.width);
  }
  DrawDetections(detections, class_names, std::max(1, std::min(canvas.width, canvas.height) / 250),
                 &canvas);
  return canvas;
}

Status WritePng(const std::string& path, const DecodedImage& image) {
  if (!stbi_write_png(path.c_str(), image.width, image.height, image.channels, image.pixels.data(),
                      image.width * image.channels)) {
    return Internal("cannot write PNG '" + path + "'");
  }
  return Status::Ok();
}

}  // namespace dtrain::data
