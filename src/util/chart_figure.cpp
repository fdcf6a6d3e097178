#include <cairo-svg.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "cada/util/error.h"
#include "chart_internal.h"

namespace cada::chart {

Figure::Impl::~Impl() {
  if (cr) cairo_destroy(cr);
  if (surface) cairo_surface_destroy(surface);
}

Figure::Figure(double width, double height) : impl_(std::make_shared<Impl>()) {
  CADA_CHECK(width > 0 && height > 0 && std::isfinite(width) && std::isfinite(height),
             "chart: a figure needs a positive size, got ", width, " x ", height);
  impl_->w = std::ceil(width);
  impl_->h = std::ceil(height);
  cairo_rectangle_t extents{0, 0, impl_->w, impl_->h};
  impl_->surface = cairo_recording_surface_create(CAIRO_CONTENT_COLOR_ALPHA, &extents);
  impl_->cr = cairo_create(impl_->surface);
  CADA_CHECK(cairo_status(impl_->cr) == CAIRO_STATUS_SUCCESS, "chart: cairo cannot create a drawing: ",
             cairo_status_to_string(cairo_status(impl_->cr)));
  cairo_set_source_rgb(impl_->cr, 1, 1, 1);
  cairo_paint(impl_->cr);
  cairo_set_source_rgb(impl_->cr, 0, 0, 0);
}

double Figure::width() const { return impl_->w; }
double Figure::height() const { return impl_->h; }

namespace {

cairo_status_t append(void* closure, const unsigned char* data, unsigned int n) {
  static_cast<std::string*>(closure)->append(reinterpret_cast<const char*>(data), n);
  return CAIRO_STATUS_SUCCESS;
}

void replay(cairo_surface_t* recording, cairo_surface_t* target, double scale) {
  cairo_t* cr = cairo_create(target);
  cairo_scale(cr, scale, scale);
  cairo_set_source_surface(cr, recording, 0, 0);
  cairo_paint(cr);
  const cairo_status_t st = cairo_status(cr);
  cairo_destroy(cr);
  CADA_CHECK(st == CAIRO_STATUS_SUCCESS, "chart: drawing failed: ", cairo_status_to_string(st));
}

}  // namespace

std::string Figure::encode(Format f, double png_scale) const {
  cairo_surface_flush(impl_->surface);
  std::string out;
  if (f == Format::svg) {
    cairo_surface_t* svg = cairo_svg_surface_create_for_stream(append, &out, impl_->w, impl_->h);
    replay(impl_->surface, svg, 1.0);
    cairo_surface_finish(svg);
    const cairo_status_t st = cairo_surface_status(svg);
    cairo_surface_destroy(svg);
    CADA_CHECK(st == CAIRO_STATUS_SUCCESS, "chart: SVG encoding failed: ", cairo_status_to_string(st));
    return out;
  }
  CADA_CHECK(png_scale > 0 && png_scale <= 8, "chart: png_scale must be in (0, 8], got ", png_scale);
  const int pw = static_cast<int>(std::lround(impl_->w * png_scale));
  const int ph = static_cast<int>(std::lround(impl_->h * png_scale));
  cairo_surface_t* img = cairo_image_surface_create(CAIRO_FORMAT_RGB24, pw, ph);
  replay(impl_->surface, img, png_scale);
  const cairo_status_t st = cairo_surface_write_to_png_stream(img, append, &out);
  cairo_surface_destroy(img);
  CADA_CHECK(st == CAIRO_STATUS_SUCCESS, "chart: PNG encoding failed: ", cairo_status_to_string(st));
  return out;
}

Format format_of(const std::string& path) {
  auto ends = [&](const char* ext) {
    const std::string e(ext);
    if (path.size() < e.size()) return false;
    return std::equal(e.rbegin(), e.rend(), path.rbegin(), [](char a, char b) { return a == std::tolower(b); });
  };
  if (ends(".png")) return Format::png;
  if (ends(".svg")) return Format::svg;
  CADA_FAIL("chart: ", path, " must end in .png or .svg");
}

std::vector<double> whole_ticks(double lo, double hi, int target) {
  CADA_CHECK(std::isfinite(lo) && std::isfinite(hi) && target >= 1, "chart: ticks need a finite range");
  if (hi < lo) std::swap(lo, hi);
  lo = std::floor(lo);
  hi = std::ceil(hi);
  if (hi == lo) {
    lo -= 1;
    hi += 1;
  }
  return nice_ticks(lo, hi, static_cast<int>(std::min<double>(target, hi - lo)));
}

std::vector<double> nice_ticks(double lo, double hi, int target) {
  CADA_CHECK(std::isfinite(lo) && std::isfinite(hi) && target >= 1, "chart: ticks need a finite range");
  if (hi < lo) std::swap(lo, hi);
  if (hi == lo) {
    const double pad = lo == 0 ? 1.0 : std::fabs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  const double raw = (hi - lo) / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  std::vector<double> t;
  for (double v = std::floor(lo / step) * step; v <= hi + step * 1e-9; v += step)
    t.push_back(std::fabs(v) < step * 1e-9 ? 0.0 : v);
  if (t.empty() || t.back() < hi - step * 1e-9) t.push_back(t.empty() ? lo : t.back() + step);
  return t;
}

namespace draw {

Rgb palette(int i) {
  static const Rgb k[] = {{0.26, 0.45, 0.77}, {0.87, 0.52, 0.32}, {0.33, 0.66, 0.41}, {0.77, 0.31, 0.32},
                          {0.51, 0.45, 0.70}, {0.58, 0.47, 0.38}, {0.85, 0.55, 0.76}, {0.55, 0.55, 0.55}};
  return k[static_cast<size_t>(std::abs(i)) % (sizeof k / sizeof k[0])];
}

void set_colour(cairo_t* cr, Rgb c, double alpha) { cairo_set_source_rgba(cr, c.r, c.g, c.b, alpha); }

void set_font(cairo_t* cr, double size, bool bold) {
  cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL,
                         bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, size);
}

double text_width(cairo_t* cr, const std::string& s) {
  cairo_text_extents_t e;
  cairo_text_extents(cr, s.c_str(), &e);
  return e.x_advance;
}

void text(cairo_t* cr, double x, double y, const std::string& s, double anchor) {
  cairo_move_to(cr, x - anchor * text_width(cr, s), y);
  cairo_show_text(cr, s.c_str());
  cairo_new_path(cr);
}

void line(cairo_t* cr, double x0, double y0, double x1, double y1, double width) {
  cairo_set_line_width(cr, width);
  cairo_move_to(cr, x0, y0);
  cairo_line_to(cr, x1, y1);
  cairo_stroke(cr);
}

std::string number(double v) {
  char b[32];
  std::snprintf(b, sizeof b, std::fabs(v) >= 100 ? "%.0f" : (std::fabs(v) >= 10 ? "%.1f" : "%.3f"), v);
  return b;
}

}  // namespace draw
}  // namespace cada::chart
