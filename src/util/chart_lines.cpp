#include <algorithm>
#include <cmath>
#include <cstdio>

#include "chart_internal.h"

namespace cada::chart {

namespace {

struct Range {
  double lo = INFINITY, hi = -INFINITY;
  void add(double v) {
    if (!std::isfinite(v)) return;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  bool empty() const { return lo > hi; }
};

std::string tick_text(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", v);
  return b;
}

struct Box {
  double x, y, w, h;  // plot area of one panel
};

void draw_series(cairo_t* cr, const Series& s, const Box& b, const std::vector<double>& xt,
                 const std::vector<double>& yt, int colour) {
  auto px = [&](double x) { return b.x + (x - xt.front()) / (xt.back() - xt.front()) * b.w; };
  auto py = [&](double y) { return b.y + b.h - (y - yt.front()) / (yt.back() - yt.front()) * b.h; };
  draw::set_colour(cr, draw::palette(colour));
  cairo_set_line_width(cr, 1.6);
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
  bool open = false;
  size_t points = 0;
  for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i) {
    if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) {
      open = false;  // a gap
      continue;
    }
    ++points;
    if (open) cairo_line_to(cr, px(s.x[i]), py(s.y[i]));
    else cairo_move_to(cr, px(s.x[i]), py(s.y[i]));
    open = true;
  }
  cairo_stroke(cr);
  if (points == 1)  // a lone point shows as a dot
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i)
      if (std::isfinite(s.x[i]) && std::isfinite(s.y[i])) {
        cairo_arc(cr, px(s.x[i]), py(s.y[i]), 2.5, 0, 2 * M_PI);
        cairo_fill(cr);
      }
}

void draw_panel(cairo_t* cr, const Panel& p, double x0, double y0, const PanelOptions& o) {
  const double font = 10, left = 48, bottom = 30, top = 22, right = 12;
  const Box b{x0 + left, y0 + top, o.panel_width - left - right, o.panel_height - top - bottom};
  const draw::Rgb black{0.1, 0.1, 0.1}, grid{0.88, 0.88, 0.88};
  draw::set_colour(cr, black);
  draw::set_font(cr, font + 1, true);
  draw::text(cr, b.x + b.w / 2, y0 + top - 8, p.title, 0.5);
  draw::set_font(cr, font);
  Range xr, yr;
  bool whole_x = true;  // every x a whole number (steps): whole-number ticks
  for (const auto& s : p.series)
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i)
      if (std::isfinite(s.x[i]) && std::isfinite(s.y[i])) {
        xr.add(s.x[i]);
        yr.add(s.y[i]);
        whole_x = whole_x && s.x[i] == std::floor(s.x[i]);
      }
  cairo_rectangle(cr, b.x, b.y, b.w, b.h);
  draw::set_colour(cr, black);
  cairo_set_line_width(cr, 0.8);
  cairo_stroke(cr);
  if (xr.empty()) {
    draw::text(cr, b.x + b.w / 2, b.y + b.h / 2, "no data", 0.5);
    return;
  }
  const auto xt = whole_x ? whole_ticks(xr.lo, xr.hi, 5) : nice_ticks(xr.lo, xr.hi, 5), yt = nice_ticks(yr.lo, yr.hi, 4);
  for (double t : xt) {
    const double x = b.x + (t - xt.front()) / (xt.back() - xt.front()) * b.w;
    draw::set_colour(cr, grid);
    draw::line(cr, x, b.y, x, b.y + b.h, 0.6);
    draw::set_colour(cr, black);
    draw::text(cr, x, b.y + b.h + font + 3, tick_text(t), 0.5);
  }
  for (double t : yt) {
    const double y = b.y + b.h - (t - yt.front()) / (yt.back() - yt.front()) * b.h;
    draw::set_colour(cr, grid);
    draw::line(cr, b.x, y, b.x + b.w, y, 0.6);
    draw::set_colour(cr, black);
    draw::text(cr, b.x - 4, y + font * 0.35, tick_text(t), 1.0);
  }
  if (!p.x_label.empty()) draw::text(cr, b.x + b.w / 2, b.y + b.h + 2 * font + 6, p.x_label, 0.5);
  for (size_t i = 0; i < p.series.size(); ++i) draw_series(cr, p.series[i], b, xt, yt, static_cast<int>(i));
  if (p.series.size() > 1)  // legend, top right inside the plot
    for (size_t i = 0; i < p.series.size(); ++i) {
      const double ly = b.y + 12 + static_cast<double>(i) * (font + 3);
      draw::set_colour(cr, draw::palette(static_cast<int>(i)));
      draw::line(cr, b.x + b.w - 70, ly - 3, b.x + b.w - 56, ly - 3, 2.0);
      draw::set_colour(cr, black);
      draw::text(cr, b.x + b.w - 52, ly, p.series[i].name);
    }
}

}  // namespace

Figure line_panels(const std::vector<Panel>& panels, const PanelOptions& o) {
  const int cols = std::max(1, std::min<int>(o.columns, std::max<int>(1, static_cast<int>(panels.size()))));
  const int rows = std::max(1, (static_cast<int>(panels.size()) + cols - 1) / cols);
  const double pad = 10, title_h = o.title.empty() ? 0 : 28;
  Figure fig(2 * pad + cols * o.panel_width, 2 * pad + title_h + rows * o.panel_height);
  cairo_t* cr = fig.impl().cr;
  if (!o.title.empty()) {
    draw::set_colour(cr, {0.1, 0.1, 0.1});
    draw::set_font(cr, 13, true);
    draw::text(cr, pad, pad + 16, o.title);
  }
  for (size_t i = 0; i < panels.size(); ++i)
    draw_panel(cr, panels[i], pad + static_cast<double>(i % cols) * o.panel_width,
               pad + title_h + static_cast<double>(i / cols) * o.panel_height, o);
  return fig;
}

}  // namespace cada::chart
