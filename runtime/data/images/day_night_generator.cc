// Procedural day/night scenes over crops of real photos.
//
// Every image is drawn from its own random stream, seeded by (seed, class, index within the
// class), so image k of a class is the same whatever the total count and the output is
// byte-identical for a seed. Scene kinds and their cues:
//
//   day   clear     blue gradient sky, sun disk + glow (mostly), white clouds, bright ground
//         overcast  grey, low-saturation cloudy sky, dim desaturated ground   (dim days)
//         dawn      hard case: blue-to-orange/pink/purple sky, sun disk just above the horizon
//   night dark      navy/black sky, many stars, moon sometimes, very dark blue ground
//         lit       moonlit or city-lit: brighter navy sky, horizon glow, moon, lit ground with
//                   many yellow windows                                      (bright nights)
//         dusk      hard case: sun below the horizon (no disk), glow band, first stars
//
// Mean brightness overlaps between dim days and bright nights on purpose; what separates the
// classes is colour and structure (sky hue and saturation, sun, stars, moon, windows).
#include "runtime/data/images/day_night_generator.h"

#include <fcntl.h>  // AT_FDCWD
#include <signal.h>
#include <stb_image.h>
#include <stb_image_write.h>
#include <stdio.h>  // renameat2, RENAME_NOREPLACE (glibc with _GNU_SOURCE)
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <system_error>
#include <vector>

#include "runtime/data/images/image_set.h"

namespace dtrain::data {
namespace {

namespace fs = std::filesystem;

constexpr int kMinSize = 16;
constexpr int kMaxSize = 4096;
constexpr double kHardCaseFraction = 0.15;
constexpr int kPhotoMaxSide = 320;  // photos are shrunk once to this before cropping

// Photos from Debian's opencv-doc that make usable landscapes/foregrounds, in a fixed order.
// Only two of the many chessboard calibration shots (left*.jpg), so they do not dominate.
const std::vector<std::string>& CandidatePhotoNames() {
  static const std::vector<std::string> names = {
      "building.jpg", "home.jpg",         "fruits.jpg", "baboon.jpg", "lena.jpg",
      "aero1.jpg",    "aero3.jpg",        "messi5.jpg", "board.jpg",  "leuvenA.jpg",
      "leuvenB.jpg",  "stuff.jpg",        "orange.jpg", "apple.jpg",  "butterfly.jpg",
      "aloeL.jpg",    "squirrel_cls.jpg", "left.jpg",   "left01.jpg", "left05.jpg"};
  return names;
}

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Seeded draws with fixed algorithms (the std distributions are implementation-defined).
class Rng {
 public:
  explicit Rng(uint64_t seed) : gen_(seed) {}
  double Uniform() { return static_cast<double>(gen_() >> 11) * 0x1.0p-53; }
  double Uniform(double a, double b) { return a + (b - a) * Uniform(); }
  int Int(int lo, int hi) {  // inclusive
    return lo + static_cast<int>(Uniform() * (hi - lo + 1) * (1.0 - 1e-12));
  }
  bool Chance(double p) { return Uniform() < p; }
  double Normal() {  // Box-Muller
    const double u1 = 1.0 - Uniform();
    const double u2 = Uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

 private:
  std::mt19937_64 gen_;
};

struct Rgb {
  float r = 0, g = 0, b = 0;
};
Rgb operator+(Rgb a, Rgb b) { return {a.r + b.r, a.g + b.g, a.b + b.b}; }
Rgb operator*(Rgb a, float s) { return {a.r * s, a.g * s, a.b * s}; }
Rgb operator*(Rgb a, Rgb b) { return {a.r * b.r, a.g * b.g, a.b * b.b}; }
Rgb Mix(Rgb a, Rgb b, float t) { return a * (1 - t) + b * t; }
float Luma(Rgb c) { return 0.299f * c.r + 0.587f * c.g + 0.114f * c.b; }
Rgb Saturate(Rgb c, float s) {
  const float l = Luma(c);
  return Mix(Rgb{l, l, l}, c, s);
}

// h in degrees, s and v in [0, 1].
Rgb Hsv(double h, double s, double v) {
  h = std::fmod(std::fmod(h, 360.0) + 360.0, 360.0) / 60.0;
  const int i = static_cast<int>(h);
  const double f = h - i;
  const float p = static_cast<float>(v * (1 - s));
  const float q = static_cast<float>(v * (1 - s * f));
  const float t = static_cast<float>(v * (1 - s * (1 - f)));
  const float vv = static_cast<float>(v);
  switch (i) {
    case 0:
      return {vv, t, p};
    case 1:
      return {q, vv, p};
    case 2:
      return {p, vv, t};
    case 3:
      return {p, q, vv};
    case 4:
      return {t, p, vv};
    default:
      return {vv, p, q};
  }
}

float Smoothstep(float a, float b, float x) {
  const float t = std::clamp((x - a) / (b - a), 0.0f, 1.0f);
  return t * t * (3 - 2 * t);
}

// Float RGB canvas, row-major.
class Canvas {
 public:
  explicit Canvas(int size) : size_(size), px_(static_cast<size_t>(size) * size) {}
  int size() const { return size_; }
  Rgb& at(int x, int y) { return px_[static_cast<size_t>(y) * size_ + x]; }
  bool inside(int x, int y) const { return x >= 0 && y >= 0 && x < size_ && y < size_; }
  void Add(int x, int y, Rgb c) {
    if (inside(x, y)) at(x, y) = at(x, y) + c;
  }

 private:
  int size_;
  std::vector<Rgb> px_;
};

// Fractal value noise in [0, 1] over a size x size grid; x is stretched by `stretch`
// (> 1 gives flat, cloud-like shapes).
std::vector<float> FractalNoise(int size, Rng& rng, int base_cells, int octaves, float stretch) {
  std::vector<float> out(static_cast<size_t>(size) * size, 0.0f);
  float amplitude = 1.0f, total = 0.0f;
  int cells = base_cells;
  for (int o = 0; o < octaves; ++o, cells *= 2, amplitude *= 0.5f) {
    const int n = cells + 2;
    std::vector<float> lattice(static_cast<size_t>(n) * n);
    for (float& v : lattice) v = static_cast<float>(rng.Uniform());
    const float step = static_cast<float>(cells) / size;
    for (int y = 0; y < size; ++y) {
      const float fy = y * step;
      const int iy = static_cast<int>(fy);
      const float ty = Smoothstep(0, 1, fy - iy);
      for (int x = 0; x < size; ++x) {
        const float fx = x * step / stretch;
        const int ix = static_cast<int>(fx);
        const float tx = Smoothstep(0, 1, fx - ix);
        const float a = lattice[iy * n + ix], b = lattice[iy * n + ix + 1];
        const float c = lattice[(iy + 1) * n + ix], d = lattice[(iy + 1) * n + ix + 1];
        out[static_cast<size_t>(y) * size + x] +=
            amplitude * ((a * (1 - tx) + b * tx) * (1 - ty) + (c * (1 - tx) + d * tx) * ty);
      }
    }
    total += amplitude;
  }
  for (float& v : out) v /= total;
  return out;
}

struct Photo {
  std::string name;
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;
};

std::vector<Photo> LoadPhotos(const std::string& dir) {
  std::vector<Photo> photos;
  if (dir.empty()) return photos;
  for (const std::string& name : CandidatePhotoNames()) {
    const std::string path = (fs::path(dir) / name).string();
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) continue;
    int w = 0, h = 0, n = 0;
    std::unique_ptr<unsigned char, void (*)(void*)> data(stbi_load(path.c_str(), &w, &h, &n, 3),
                                                         stbi_image_free);
    if (!data || w < 16 || h < 16) continue;  // unusable: simply not used
    Photo p;
    p.name = name;
    const double scale = std::min(1.0, static_cast<double>(kPhotoMaxSide) / std::max(w, h));
    p.width = std::max(1, static_cast<int>(std::lround(w * scale)));
    p.height = std::max(1, static_cast<int>(std::lround(h * scale)));
    p.rgb = ResizeBilinear(data.get(), h, w, 3, p.height, p.width);
    photos.push_back(std::move(p));
  }
  return photos;
}

enum class Scene { kClearDay, kOvercastDay, kDawnDay, kDarkNight, kLitNight, kDuskNight };

bool IsNight(Scene s) {
  return s == Scene::kDarkNight || s == Scene::kLitNight || s == Scene::kDuskNight;
}

// A horizon glow colour: orange, pink or purple.
double GlowHue(Rng& rng) {
  const double pick = rng.Uniform();
  if (pick < 0.5) return rng.Uniform(12, 40);
  if (pick < 0.8) return rng.Uniform(330, 355);
  return rng.Uniform(275, 310);
}

// Alpha-blends a soft-edged disk; a second disk (cut_r > 0, centre offset by cut_dx/cut_dy) is
// removed from it, giving a crescent.
void DrawDisk(Canvas& c, double cx, double cy, double r, Rgb colour, double cut_dx = 0,
              double cut_dy = 0, double cut_r = 0) {
  const int x0 = std::max(0, static_cast<int>(cx - r - 2)),
            x1 = std::min(c.size() - 1, static_cast<int>(cx + r + 2));
  const int y0 = std::max(0, static_cast<int>(cy - r - 2)),
            y1 = std::min(c.size() - 1, static_cast<int>(cy + r + 2));
  for (int y = y0; y <= y1; ++y) {
    for (int x = x0; x <= x1; ++x) {
      const double d = std::hypot(x + 0.5 - cx, y + 0.5 - cy);
      double a = std::clamp(r - d + 0.5, 0.0, 1.0);
      if (cut_r > 0) {
        const double dc = std::hypot(x + 0.5 - cx - cut_dx, y + 0.5 - cy - cut_dy);
        a *= 1.0 - std::clamp(cut_r - dc + 0.5, 0.0, 1.0);
      }
      if (a > 0) c.at(x, y) = Mix(c.at(x, y), colour, static_cast<float>(a));
    }
  }
}

// Adds a gaussian glow around (cx, cy).
void AddGlow(Canvas& c, double cx, double cy, double sigma, Rgb colour) {
  const int reach = static_cast<int>(3 * sigma) + 1;
  for (int y = std::max(0, static_cast<int>(cy) - reach);
       y < std::min(c.size(), static_cast<int>(cy) + reach); ++y) {
    for (int x = std::max(0, static_cast<int>(cx) - reach);
         x < std::min(c.size(), static_cast<int>(cx) + reach); ++x) {
      const double dx = x + 0.5 - cx, dy = y + 0.5 - cy;
      const float w = static_cast<float>(std::exp(-(dx * dx + dy * dy) / (2 * sigma * sigma)));
      c.at(x, y) = c.at(x, y) + colour * w;
    }
  }
}

struct SceneResult {
  std::vector<uint8_t> rgb;
  int photo = -1;  // index of the photo used, -1 for a procedural ground
};

SceneResult RenderScene(Scene scene, int S, const std::vector<Photo>& photos, Rng& rng) {
  Canvas canvas(S);
  const double px = S / 96.0;  // feature sizes are designed at 96 px
  const bool night = IsNight(scene);

  // --- Horizon / ground profile: flat, hills or a skyline of blocks. -------------------------
  const double horizon = S * rng.Uniform(0.45, 0.72);
  std::vector<double> ground_top(S, horizon);
  const double profile = rng.Uniform();
  if (profile < 0.35) {
    const double a1 = S * rng.Uniform(0.02, 0.08), f1 = rng.Uniform(1.0, 3.0) * 6.2832 / S;
    const double a2 = S * rng.Uniform(0.0, 0.03), f2 = rng.Uniform(4.0, 9.0) * 6.2832 / S;
    const double p1 = rng.Uniform(0, 6.2832), p2 = rng.Uniform(0, 6.2832);
    for (int x = 0; x < S; ++x) {
      ground_top[x] =
          horizon - a1 * (0.5 + 0.5 * std::sin(f1 * x + p1)) - a2 * std::sin(f2 * x + p2);
    }
  } else if (profile < 0.7) {
    int x = 0;
    while (x < S) {
      const int w = std::max(2, static_cast<int>(S * rng.Uniform(0.06, 0.2)));
      const double h = rng.Chance(0.25) ? 0.0 : S * rng.Uniform(0.03, 0.22);
      for (int k = x; k < std::min(S, x + w); ++k) ground_top[k] = horizon - h;
      x += w;
    }
  }
  double top_min = S;
  for (double g : ground_top) top_min = std::min(top_min, g);
  top_min = std::max(top_min, 0.18 * S);
  for (double& g : ground_top) g = std::max(g, top_min);

  // --- Sky gradient. ----------------------------------------------------------------------------
  Rgb top, bottom, glow_colour;
  double glow_start = 2.0;  // fraction of the sky height where the dawn/dusk glow band begins
  switch (scene) {
    case Scene::kClearDay: {
      const double hue = rng.Uniform(195, 222), v = rng.Uniform(0.55, 0.95);
      top = Hsv(hue, rng.Uniform(0.45, 0.85), v);
      bottom = Hsv(hue + rng.Uniform(-8, 5), rng.Uniform(0.1, 0.35),
                   std::min(1.0, v + rng.Uniform(0.05, 0.2)));
      break;
    }
    case Scene::kOvercastDay: {
      const double hue = rng.Uniform(190, 240), v = rng.Uniform(0.2, 0.48);
      top = Hsv(hue, rng.Uniform(0.0, 0.1), v);
      bottom = Hsv(hue, rng.Uniform(0.0, 0.08), std::min(1.0, v + rng.Uniform(0.0, 0.15)));
      break;
    }
    case Scene::kDawnDay: {
      top = Hsv(rng.Uniform(200, 230), rng.Uniform(0.35, 0.65), rng.Uniform(0.4, 0.7));
      bottom = Mix(top, Rgb{1, 1, 1}, 0.2f);
      glow_colour = Hsv(GlowHue(rng), rng.Uniform(0.5, 0.85), rng.Uniform(0.75, 1.0));
      glow_start = rng.Uniform(0.25, 0.65);
      break;
    }
    case Scene::kDarkNight: {
      const double hue = rng.Uniform(215, 245);
      top = Hsv(hue, rng.Uniform(0.5, 0.95), rng.Uniform(0.02, 0.12));
      bottom = Hsv(hue, rng.Uniform(0.3, 0.7), rng.Uniform(0.06, 0.2));
      break;
    }
    case Scene::kLitNight: {
      top = Hsv(rng.Uniform(215, 240), rng.Uniform(0.55, 0.9), rng.Uniform(0.14, 0.34));
      bottom = rng.Chance(0.6)
                   ? Hsv(rng.Uniform(20, 45), rng.Uniform(0.35, 0.65), rng.Uniform(0.4, 0.7))
                   : Hsv(rng.Uniform(210, 230), rng.Uniform(0.35, 0.6), rng.Uniform(0.35, 0.6));
      break;
    }
    case Scene::kDuskNight: {
      top = Hsv(rng.Uniform(225, 260), rng.Uniform(0.5, 0.85), rng.Uniform(0.06, 0.22));
      bottom = Mix(top, Rgb{0.3f, 0.3f, 0.4f}, 0.3f);
      glow_colour = Hsv(GlowHue(rng), rng.Uniform(0.5, 0.85), rng.Uniform(0.35, 0.7));
      glow_start = rng.Uniform(0.3, 0.7);
      break;
    }
  }
  const double gamma = rng.Uniform(0.7, 1.5);
  for (int y = 0; y < S; ++y) {
    const float t = static_cast<float>(std::pow(std::clamp(y / horizon, 0.0, 1.0), gamma));
    Rgb c = Mix(top, bottom, t);
    if (glow_start < 1.0) {
      const float g =
          Smoothstep(static_cast<float>(glow_start), 1.0f, static_cast<float>(y / horizon));
      c = Mix(c, glow_colour, g * 0.9f);
    }
    for (int x = 0; x < S; ++x) canvas.at(x, y) = c;
  }
  auto in_sky = [&](double x, double y) {
    return x >= 0 && x < S && y >= 0 && y < ground_top[static_cast<int>(x)] - 1;
  };

  // --- Stars and moon (night). ---------------------------------------------------------------
  const double sky_area = horizon * S / (96.0 * 96.0 * 0.6);
  double stars = 0;
  if (scene == Scene::kDarkNight && rng.Chance(0.92)) stars = rng.Uniform(25, 90);
  if (scene == Scene::kLitNight && rng.Chance(0.6)) stars = rng.Uniform(6, 30);
  if (scene == Scene::kDuskNight) stars = rng.Uniform(4, 16);
  const int n_stars = static_cast<int>(stars * sky_area);
  for (int k = 0; k < n_stars; ++k) {
    const double sx = rng.Uniform(0, S);
    const double max_y = scene == Scene::kDuskNight ? horizon * 0.5 : horizon;
    const double sy = rng.Uniform(0, max_y);
    if (!in_sky(sx, sy)) continue;
    const float b = static_cast<float>(rng.Uniform(0.3, 1.0));
    const double tint = rng.Uniform();
    Rgb colour = tint < 0.7    ? Rgb{1, 1, 1}
                 : tint < 0.85 ? Rgb{0.8f, 0.88f, 1}
                               : Rgb{1, 0.92f, 0.75f};
    colour = colour * b;
    const int ix = static_cast<int>(sx), iy = static_cast<int>(sy);
    canvas.Add(ix, iy, colour);
    if (rng.Chance(0.12 * px)) {  // a bright star: a small cross
      for (auto [dx, dy] : {std::pair{1, 0}, {-1, 0}, {0, 1}, {0, -1}})
        canvas.Add(ix + dx, iy + dy, colour * 0.45f);
    }
  }
  const bool moon = (scene == Scene::kDarkNight && rng.Chance(0.45)) ||
                    (scene == Scene::kLitNight && rng.Chance(0.7));
  if (moon) {
    const double r = S * rng.Uniform(0.03, 0.07);
    const double mx = rng.Uniform(0.1, 0.9) * S,
                 my = rng.Uniform(0.08 * S, std::max(0.1 * S, top_min - 2.5 * r));
    const Rgb colour = Rgb{0.95f, 0.95f, 0.88f} * static_cast<float>(rng.Uniform(0.8, 1.0));
    AddGlow(canvas, mx, my, r * rng.Uniform(2, 4),
            Rgb{0.7f, 0.8f, 1.0f} * static_cast<float>(rng.Uniform(0.08, 0.3)));
    if (rng.Chance(0.4)) {
      DrawDisk(canvas, mx, my, r, colour);
    } else {
      const double angle = rng.Uniform(0, 6.2832), off = r * rng.Uniform(0.35, 0.8);
      DrawDisk(canvas, mx, my, r, colour, off * std::cos(angle), off * std::sin(angle), r);
    }
  }

  // --- Sun (day). ---------------------------------------------------------------------------
  struct Sun {
    bool disk = false;
    double x = 0, y = 0, r = 0;
    Rgb colour;
  } sun;
  if (scene == Scene::kClearDay && rng.Chance(0.75)) {
    sun.disk = true;
    sun.r = S * rng.Uniform(0.035, 0.065);
    sun.x = rng.Uniform(0.1, 0.9) * S;
    sun.y = rng.Uniform(0.08 * S, std::max(0.1 * S, top_min - 2 * sun.r));
    sun.colour = Rgb{1.0f, 0.98f, 0.88f};
    AddGlow(canvas, sun.x, sun.y, sun.r * rng.Uniform(2.5, 5),
            Rgb{1.0f, 0.95f, 0.8f} * static_cast<float>(rng.Uniform(0.25, 0.6)));
  } else if (scene == Scene::kOvercastDay && rng.Chance(0.3)) {  // diffuse sun behind clouds
    AddGlow(canvas, rng.Uniform(0.1, 0.9) * S, rng.Uniform(0.05, 0.3) * S,
            S * rng.Uniform(0.08, 0.16),
            Rgb{1, 1, 0.95f} * static_cast<float>(rng.Uniform(0.12, 0.3)));
  } else if (scene == Scene::kDawnDay) {
    sun.disk = true;
    sun.r = S * rng.Uniform(0.04, 0.07);
    sun.x = rng.Uniform(0.1, 0.9) * S;
    // Above the highest ground under the disk, so the disk is visible (partly set at most).
    double ground_under = S;
    for (int x = std::max(0, static_cast<int>(sun.x - sun.r));
         x <= std::min(S - 1, static_cast<int>(sun.x + sun.r)); ++x) {
      ground_under = std::min(ground_under, ground_top[x]);
    }
    sun.y = ground_under - sun.r * rng.Uniform(0.6, 2.5);
    sun.colour = Rgb{1.0f, static_cast<float>(rng.Uniform(0.6, 0.85)),
                     static_cast<float>(rng.Uniform(0.3, 0.5))};
    AddGlow(canvas, sun.x, sun.y, sun.r * rng.Uniform(3, 6),
            sun.colour * static_cast<float>(rng.Uniform(0.4, 0.8)));
  }

  // --- Clouds. -------------------------------------------------------------------------------
  double cloud_chance = 0;
  switch (scene) {
    case Scene::kClearDay:
      cloud_chance = 0.45;
      break;
    case Scene::kOvercastDay:
      cloud_chance = 1.0;
      break;
    case Scene::kDawnDay:
      cloud_chance = 0.4;
      break;
    default:
      cloud_chance = 0.2;
      break;
  }
  if (rng.Chance(cloud_chance)) {
    const std::vector<float> noise =
        FractalNoise(S, rng, rng.Int(3, 5), 3, static_cast<float>(rng.Uniform(1.5, 3.0)));
    const float cover = static_cast<float>(scene == Scene::kOvercastDay ? rng.Uniform(0.2, 0.45)
                                                                        : rng.Uniform(0.45, 0.65));
    const float density = static_cast<float>(rng.Uniform(0.5, 0.95));
    Rgb light;
    Rgb shade;
    if (scene == Scene::kClearDay) {
      light = Rgb{0.97f, 0.97f, 0.98f};
      shade = Rgb{0.72f, 0.74f, 0.8f};
    } else if (scene == Scene::kOvercastDay) {
      light = Mix(top, Rgb{1, 1, 1}, 0.35f);
      shade = top * 0.7f;
    } else if (scene == Scene::kDawnDay) {
      light = Mix(glow_colour, Rgb{1, 1, 1}, 0.4f);
      shade = Mix(top, glow_colour, 0.3f) * 0.7f;
    } else {
      light = Rgb{0.13f, 0.14f, 0.19f};
      shade = Rgb{0.04f, 0.045f, 0.07f};
    }
    for (int y = 0; y < S; ++y) {
      for (int x = 0; x < S; ++x) {
        const float n = noise[static_cast<size_t>(y) * S + x];
        const float a = Smoothstep(cover, cover + 0.25f, n) * density;
        if (a <= 0) continue;
        const Rgb cc = Mix(shade, light, Smoothstep(cover, 1.0f, n));
        canvas.at(x, y) = Mix(canvas.at(x, y), cc, a);
      }
    }
  }
  if (sun.disk) DrawDisk(canvas, sun.x, sun.y, sun.r, sun.colour);

  // --- Ground: a crop of a real photo (or procedural texture), graded for the time of day. ---
  const int g0 = static_cast<int>(top_min);
  const int gh = S - g0;
  std::vector<uint8_t> ground;
  SceneResult result;
  if (!photos.empty() && gh > 0) {
    result.photo = rng.Int(0, static_cast<int>(photos.size()) - 1);
    const Photo& p = photos[result.photo];
    const double aspect = static_cast<double>(S) / gh;  // width / height of the crop
    const double max_w = std::min<double>(p.width, p.height * aspect);
    const int cw = std::max(2, static_cast<int>(max_w * rng.Uniform(0.35, 1.0)));
    const int ch = std::max(2, std::min(p.height, static_cast<int>(cw / aspect)));
    const int x0 = rng.Int(0, p.width - cw), y0 = rng.Int(0, p.height - ch);
    std::vector<uint8_t> crop(static_cast<size_t>(cw) * ch * 3);
    for (int y = 0; y < ch; ++y) {
      std::memcpy(&crop[static_cast<size_t>(y) * cw * 3],
                  &p.rgb[(static_cast<size_t>(y0 + y) * p.width + x0) * 3],
                  static_cast<size_t>(cw) * 3);
    }
    ground = ResizeBilinear(crop.data(), ch, cw, 3, gh, S);
  } else if (gh > 0) {
    const std::vector<float> tex = FractalNoise(S, rng, 6, 4, 1.0f);
    const Rgb base = Hsv(rng.Uniform(20, 130), rng.Uniform(0.3, 0.6), rng.Uniform(0.35, 0.6));
    ground.resize(static_cast<size_t>(gh) * S * 3);
    for (int y = 0; y < gh; ++y) {
      for (int x = 0; x < S; ++x) {
        const Rgb c = base * (0.5f + tex[static_cast<size_t>(y + g0) * S + x]);
        uint8_t* o = &ground[(static_cast<size_t>(y) * S + x) * 3];
        o[0] = static_cast<uint8_t>(std::clamp(c.r * 255.0f, 0.0f, 255.0f));
        o[1] = static_cast<uint8_t>(std::clamp(c.g * 255.0f, 0.0f, 255.0f));
        o[2] = static_cast<uint8_t>(std::clamp(c.b * 255.0f, 0.0f, 255.0f));
      }
    }
  }
  const bool flip = rng.Chance(0.5);
  float gain = 1, saturation = 1, haze = 0;
  Rgb tint{1, 1, 1};
  switch (scene) {
    case Scene::kClearDay:
      gain = static_cast<float>(rng.Uniform(0.8, 1.15));
      saturation = static_cast<float>(rng.Uniform(1.0, 1.25));
      tint = Rgb{1.03f, 1.0f, 0.95f};
      haze = static_cast<float>(rng.Uniform(0.0, 0.3));
      break;
    case Scene::kOvercastDay:
      gain = static_cast<float>(rng.Uniform(0.18, 0.45));
      saturation = static_cast<float>(rng.Uniform(0.6, 0.9));
      tint = Rgb{0.97f, 0.99f, 1.02f};
      haze = static_cast<float>(rng.Uniform(0.0, 0.2));
      break;
    case Scene::kDawnDay:
      gain = static_cast<float>(rng.Uniform(0.3, 0.6));
      tint = Mix(Rgb{1, 1, 1}, glow_colour, 0.35f);
      haze = static_cast<float>(rng.Uniform(0.0, 0.2));
      break;
    case Scene::kDarkNight:
      gain = static_cast<float>(rng.Uniform(0.06, 0.18));
      saturation = 0.5f;
      tint = Rgb{0.55f, 0.7f, 1.0f};
      break;
    case Scene::kLitNight:
      gain = static_cast<float>(rng.Uniform(0.7, 1.4));
      saturation = 0.6f;
      tint = rng.Chance(0.5) ? Rgb{0.6f, 0.72f, 1.0f} : Rgb{0.82f, 0.74f, 0.84f};
      break;
    case Scene::kDuskNight:
      gain = static_cast<float>(rng.Uniform(0.2, 0.5));
      saturation = 0.6f;
      tint = Mix(Rgb{0.6f, 0.65f, 1.0f}, glow_colour, 0.2f);
      break;
  }
  for (int y = g0; y < S; ++y) {
    for (int x = 0; x < S; ++x) {
      const float a = static_cast<float>(std::clamp(y + 1.0 - ground_top[x], 0.0, 1.0));
      if (a <= 0) continue;
      const int sx = flip ? S - 1 - x : x;
      const uint8_t* g = &ground[(static_cast<size_t>(y - g0) * S + sx) * 3];
      Rgb c{g[0] / 255.0f, g[1] / 255.0f, g[2] / 255.0f};
      c = Saturate(c, saturation) * tint * gain;
      if (haze > 0) {
        const float h =
            haze * std::exp(-static_cast<float>(y - ground_top[x]) / static_cast<float>(0.12 * S));
        c = Mix(c, bottom, h);
      }
      canvas.at(x, y) = Mix(canvas.at(x, y), c, a);
    }
  }

  // --- Lit windows (night): grids of small warm rectangles on facades in the ground. --------
  double window_chance = 0;
  if (scene == Scene::kDarkNight) window_chance = 0.6;
  if (scene == Scene::kLitNight) window_chance = 0.95;
  if (scene == Scene::kDuskNight) window_chance = 0.6;
  if (rng.Chance(window_chance)) {
    const int clusters = scene == Scene::kLitNight ? rng.Int(2, 5) : rng.Int(1, 3);
    for (int k = 0; k < clusters; ++k) {
      const int fw = static_cast<int>(S * rng.Uniform(0.1, 0.35)),
                fh = static_cast<int>(S * rng.Uniform(0.08, 0.3));
      const int fx = rng.Int(0, std::max(0, S - fw)), fy = rng.Int(g0, std::max(g0, S - fh));
      const int ww = std::max(1, static_cast<int>(std::lround(rng.Uniform(1.0, 2.5) * px)));
      const int wh = std::max(1, static_cast<int>(std::lround(rng.Uniform(1.0, 2.5) * px)));
      const int sx = ww + std::max(1, static_cast<int>(std::lround(rng.Uniform(1.5, 4.0) * px)));
      const int sy = wh + std::max(1, static_cast<int>(std::lround(rng.Uniform(1.5, 4.0) * px)));
      const double lit = rng.Uniform(0.2, 0.7);
      for (int wy = fy; wy + wh <= std::min(S, fy + fh); wy += sy) {
        for (int wx = fx; wx + ww <= std::min(S, fx + fw); wx += sx) {
          if (!rng.Chance(lit)) continue;
          const Rgb colour = Rgb{1.0f, static_cast<float>(rng.Uniform(0.75, 0.9)),
                                 static_cast<float>(rng.Uniform(0.35, 0.55))} *
                             static_cast<float>(rng.Uniform(0.7, 1.0));
          for (int y = wy; y < wy + wh; ++y) {
            for (int x = wx; x < wx + ww; ++x) {
              if (y >= ground_top[x] + 1) canvas.at(x, y) = colour;
            }
          }
        }
      }
    }
  }

  // --- Camera: exposure, vignetting, sensor noise, quantisation. ----------------------------
  const float exposure = static_cast<float>(rng.Uniform(0.9, 1.1));
  const float vignette = static_cast<float>(rng.Uniform(0.0, 0.25));
  const double sigma = night ? rng.Uniform(0.01, 0.035) : rng.Uniform(0.004, 0.02);
  result.rgb.resize(static_cast<size_t>(S) * S * 3);
  for (int y = 0; y < S; ++y) {
    for (int x = 0; x < S; ++x) {
      const float dx = (x + 0.5f) / S - 0.5f, dy = (y + 0.5f) / S - 0.5f;
      const float v = exposure * (1.0f - vignette * 2.0f * (dx * dx + dy * dy));
      Rgb c = canvas.at(x, y) * v;
      const float luma_noise = static_cast<float>(rng.Normal() * sigma);
      const float chroma = static_cast<float>(sigma * 0.3 * 3.4641);  // uniform, sd sigma * 0.3
      c.r += luma_noise + chroma * static_cast<float>(rng.Uniform() - 0.5);
      c.g += luma_noise + chroma * static_cast<float>(rng.Uniform() - 0.5);
      c.b += luma_noise + chroma * static_cast<float>(rng.Uniform() - 0.5);
      uint8_t* o = &result.rgb[(static_cast<size_t>(y) * S + x) * 3];
      o[0] = static_cast<uint8_t>(std::clamp(std::lround(c.r * 255.0f), 0L, 255L));
      o[1] = static_cast<uint8_t>(std::clamp(std::lround(c.g * 255.0f), 0L, 255L));
      o[2] = static_cast<uint8_t>(std::clamp(std::lround(c.b * 255.0f), 0L, 255L));
    }
  }
  return result;
}

// Removes a directory tree on scope exit unless released.
class TempDirGuard {
 public:
  explicit TempDirGuard(fs::path path) : path_(std::move(path)) {}
  TempDirGuard(const TempDirGuard&) = delete;
  TempDirGuard& operator=(const TempDirGuard&) = delete;
  ~TempDirGuard() {
    if (!path_.empty()) {
      std::error_code ec;
      fs::remove_all(path_, ec);
    }
  }
  void Release() { path_.clear(); }

 private:
  fs::path path_;
};

// Renames without replacing an existing target (a plain rename() would silently replace an
// empty directory created meanwhile).
Status RenameNoReplace(const fs::path& from, const fs::path& to) {
#if defined(__linux__) && defined(RENAME_NOREPLACE)
  if (renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) {
    return Status::Ok();
  }
  if (errno == EEXIST || errno == ENOTEMPTY) {
    return Status(StatusCode::kAlreadyExists,
                  "output directory '" + to.string() + "' already exists");
  }
  if (errno != EINVAL && errno != ENOSYS) {
    return Internal("cannot rename '" + from.string() + "' to '" + to.string() +
                    "': " + std::strerror(errno));
  }
#endif
  std::error_code ec;
  if (fs::exists(fs::symlink_status(to, ec))) {
    return Status(StatusCode::kAlreadyExists,
                  "output directory '" + to.string() + "' already exists");
  }
  fs::rename(from, to, ec);
  if (ec)
    return Internal("cannot rename '" + from.string() + "' to '" + to.string() +
                    "': " + ec.message());
  return Status::Ok();
}

// Removes "<out>.tmp-<pid>" directories left by generator runs that were killed: their pid is no
// longer alive. A live pid's directory may be another run in progress and is left alone.
void RemoveStaleTempDirs(const fs::path& out) {
  const std::string prefix = out.filename().string() + ".tmp-";
  const fs::path parent = out.has_parent_path() ? out.parent_path() : fs::path(".");
  std::error_code ec;
  for (fs::directory_iterator it(parent, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string pid_text = name.substr(prefix.size());
    if (pid_text.empty() || pid_text.size() > 10 ||
        !std::all_of(pid_text.begin(), pid_text.end(),
                     [](char c) { return c >= '0' && c <= '9'; })) {
      continue;
    }
    const long pid = std::stol(pid_text);
    if (pid <= 0 || pid == ::getpid()) continue;
    if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;  // alive (or unknown)
    std::error_code remove_ec;
    fs::remove_all(it->path(), remove_ec);
  }
}

}  // namespace

double DayNightBytesUpperBound(int count, int size) {
  // Raw rows with a filter byte each, deflate's 5 bytes per stored block of 65535, zlib's 6 and
  // the PNG signature and chunks' 57 (the same bound as runtime/spec/resource_estimate.cc).
  const double raw = static_cast<double>(size) * (static_cast<double>(size) * 3 + 1);
  return static_cast<double>(count) * (raw + std::ceil(raw / 65535) * 5 + 6 + 57);
}

DayNightCounts SplitDayNight(int count) {
  // count - count / 2, not (count + 1) / 2: the latter overflows at INT_MAX.
  const int day = count - count / 2;
  return {day, count - day};
}

StatusOr<DayNightReport> GenerateDayNight(const DayNightOptions& options) {
  if (options.out_dir.empty()) return InvalidArgument("day/night generator: out_dir is empty");
  if (options.count < 2) {
    return InvalidArgument("day/night generator: count must be >= 2 (one image per class), got " +
                           std::to_string(options.count));
  }
  if (options.size < kMinSize || options.size > kMaxSize) {
    return InvalidArgument("day/night generator: size must be in [" + std::to_string(kMinSize) +
                           ", " + std::to_string(kMaxSize) + "], got " +
                           std::to_string(options.size));
  }
  fs::path out(options.out_dir);
  while (!out.empty() && !out.has_filename()) out = out.parent_path();  // "dir/" -> "dir"
  std::error_code ec;
  if (fs::exists(fs::symlink_status(out, ec))) {
    return Status(StatusCode::kAlreadyExists,
                  "output directory '" + options.out_dir +
                      "' already exists; remove it or choose another path");
  }
  if (out.has_parent_path()) {
    fs::create_directories(out.parent_path(), ec);
    if (ec) {
      return Internal("cannot create the parent of '" + options.out_dir + "': " + ec.message());
    }
  }
  // Refuse up front rather than fill the disk at a few hundred images a second.
  const fs::path parent = out.has_parent_path() ? out.parent_path() : fs::path(".");
  struct statvfs disk;
  if (::statvfs(parent.c_str(), &disk) == 0) {
    const double free = static_cast<double>(disk.f_bavail) * static_cast<double>(disk.f_frsize);
    const double needed = DayNightBytesUpperBound(options.count, options.size);
    if (needed > free) {
      return Status(StatusCode::kResourceExhausted,
                    "day/night generator: " + std::to_string(options.count) + " images of " +
                        std::to_string(options.size) + "x" + std::to_string(options.size) +
                        " may take up to " + std::to_string(static_cast<uint64_t>(needed)) +
                        " bytes, more than the " + std::to_string(static_cast<uint64_t>(free)) +
                        " bytes free where '" + options.out_dir + "' is written; lower the count");
    }
  }
  RemoveStaleTempDirs(out);
  const fs::path tmp = out.string() + ".tmp-" + std::to_string(::getpid());
  fs::remove_all(tmp, ec);  // a stale leftover of a crashed run with our pid
  TempDirGuard guard(tmp);
  for (const char* cls : {"day", "night"}) {
    fs::create_directories(tmp / cls, ec);
    if (ec) return Internal("cannot create '" + (tmp / cls).string() + "': " + ec.message());
  }

  const std::vector<Photo> photos = LoadPhotos(options.photo_dir);
  std::vector<bool> photo_used(photos.size(), false);
  DayNightReport report;
  const auto [n_day, n_night] = SplitDayNight(options.count);
  const int digits = std::max(5, static_cast<int>(std::to_string(options.count).size()));
  for (int cls = 0; cls < 2; ++cls) {
    const bool night = cls == 1;
    const int n = night ? n_night : n_day;
    for (int k = 0; k < n; ++k) {
      Rng rng(SplitMix64(SplitMix64(options.seed) ^
                         SplitMix64((static_cast<uint64_t>(cls) << 32) | k)));
      Scene scene;
      if (rng.Chance(kHardCaseFraction)) {
        scene = night ? Scene::kDuskNight : Scene::kDawnDay;
        ++report.hard_cases;
      } else if (night) {
        scene = rng.Chance(0.45) ? Scene::kLitNight : Scene::kDarkNight;
      } else {
        scene = rng.Chance(0.45) ? Scene::kOvercastDay : Scene::kClearDay;
      }
      const SceneResult img = RenderScene(scene, options.size, photos, rng);
      if (img.photo >= 0) photo_used[img.photo] = true;
      std::string number = std::to_string(k);
      number.insert(0, static_cast<size_t>(std::max(0, digits - static_cast<int>(number.size()))),
                    '0');
      const std::string cls_name = night ? "night" : "day";
      const fs::path path = tmp / cls_name / (cls_name + "_" + number + ".png");
      if (!stbi_write_png(path.c_str(), options.size, options.size, 3, img.rgb.data(),
                          options.size * 3)) {
        return Internal("cannot write image '" + path.string() + "'");
      }
      ++(night ? report.night : report.day);
    }
  }
  report.photos_used = static_cast<int>(std::count(photo_used.begin(), photo_used.end(), true));

  DTRAIN_RETURN_IF_ERROR(RenameNoReplace(tmp, out));
  guard.Release();
  return report;
}

}  // namespace dtrain::data
