// Drawing helpers shared by the chart kinds (util layer, cairo).
#pragma once

#include <cairo.h>

#include <string>

#include "cada/util/chart.h"

namespace cada::chart {

struct Figure::Impl {
  double w = 0, h = 0;
  cairo_surface_t* surface = nullptr;  // recording surface, extents (0, 0, w, h)
  cairo_t* cr = nullptr;
  ~Impl();
};

namespace draw {

struct Rgb {
  double r, g, b;
};
// Colour `i` of a palette that stays distinguishable for about eight series.
Rgb palette(int i);
void set_colour(cairo_t* cr, Rgb c, double alpha = 1.0);
void set_font(cairo_t* cr, double size, bool bold = false);
double text_width(cairo_t* cr, const std::string& s);
// Text with its baseline-left at (x, y), or aligned by `anchor`: 0 left, 0.5 centre, 1 right.
void text(cairo_t* cr, double x, double y, const std::string& s, double anchor = 0.0);
void line(cairo_t* cr, double x0, double y0, double x1, double y1, double width = 1.0);
// Short number text: 3 decimals below 10, 1 below 100, none above.
std::string number(double v);

}  // namespace draw
}  // namespace cada::chart
