#include <algorithm>
#include <cmath>

#include "chart_internal.h"

namespace cada::chart {

namespace {

double axis_end(const std::vector<Bar>& bars, double requested) {
  if (requested > 0) return requested;
  bool unit = true;
  double m = 0;
  for (const auto& b : bars)
    for (double v : {b.value, b.hi})
      if (std::isfinite(v)) {
        m = std::max(m, v);
        if (v < 0 || v > 1) unit = false;
      }
  return unit ? 1.0 : (m > 0 ? m : 1.0);
}

std::string value_text(const Bar& b) {
  if (!std::isfinite(b.value)) return "n/a";
  std::string s = draw::number(b.value);
  if (std::isfinite(b.lo) && std::isfinite(b.hi)) s += "  [" + draw::number(b.lo) + ", " + draw::number(b.hi) + "]";
  return s;
}

}  // namespace

Figure bar_chart(const std::vector<Bar>& bars, const BarOptions& o) {
  const double font = 11, pad = 10, gap = 5;
  const double bar_h = std::max(o.bar_height, font + 4);
  // Measure the texts on a scratch figure first: the layout depends on them.
  double label_w = 0, value_w = 0, title_w = 0;
  {
    Figure scratch(1, 1);
    cairo_t* cr = scratch.impl().cr;
    draw::set_font(cr, font);
    for (const auto& b : bars) {
      label_w = std::max(label_w, draw::text_width(cr, b.label));
      value_w = std::max(value_w, draw::text_width(cr, value_text(b)));
    }
    draw::set_font(cr, font + 2, true);
    title_w = draw::text_width(cr, o.title);
  }
  const double vmax = axis_end(bars, o.max_value);
  const double title_h = o.title.empty() ? 0 : font + 2 + 2 * pad;
  const double plot_x = pad + label_w + 2 * gap, plot_y = title_h + pad;
  const size_t rows = std::max<size_t>(1, bars.size());
  const double axis_y = plot_y + static_cast<double>(rows) * (bar_h + gap);
  const double width = std::max(plot_x + o.plot_width + 2 * gap + value_w + pad, title_w + 2 * pad);
  Figure fig(width, axis_y + gap + font + 2 * pad);
  cairo_t* cr = fig.impl().cr;
  const draw::Rgb black{0.1, 0.1, 0.1}, grid{0.85, 0.85, 0.85};
  auto xpos = [&](double v) { return plot_x + std::max(0.0, std::min(v, vmax)) / vmax * o.plot_width; };
  if (!o.title.empty()) {
    draw::set_colour(cr, black);
    draw::set_font(cr, font + 2, true);
    draw::text(cr, pad, pad + font + 2, o.title);
  }
  draw::set_font(cr, font);
  for (int k = 0; k <= 4; ++k) {  // grid and ticks at quarters of the axis
    const double v = vmax * k / 4.0, x = xpos(v);
    draw::set_colour(cr, k == 0 ? black : grid);
    draw::line(cr, x, plot_y, x, axis_y);
    draw::set_colour(cr, black);
    draw::text(cr, x, axis_y + gap + font, draw::number(v), 0.5);
  }
  draw::line(cr, plot_x, axis_y, plot_x + o.plot_width, axis_y);
  for (size_t i = 0; i < bars.size(); ++i) {
    const Bar& b = bars[i];
    const double y = plot_y + static_cast<double>(i) * (bar_h + gap), baseline = y + bar_h / 2 + font * 0.35;
    draw::set_colour(cr, black);
    draw::text(cr, plot_x - 2 * gap, baseline, b.label, 1.0);
    draw::text(cr, plot_x + o.plot_width + 2 * gap, baseline, value_text(b));
    if (!std::isfinite(b.value)) continue;
    draw::set_colour(cr, draw::palette(b.group));
    cairo_rectangle(cr, plot_x + 0.5, y, xpos(b.value) - plot_x - 0.5, bar_h);
    cairo_fill(cr);
    if (std::isfinite(b.lo) && std::isfinite(b.hi)) {
      const double mid = y + bar_h / 2, tick = bar_h / 4;
      draw::set_colour(cr, black);
      draw::line(cr, xpos(b.lo), mid, xpos(b.hi), mid, 1.2);
      draw::line(cr, xpos(b.lo), mid - tick, xpos(b.lo), mid + tick, 1.2);
      draw::line(cr, xpos(b.hi), mid - tick, xpos(b.hi), mid + tick, 1.2);
    }
  }
  return fig;
}

}  // namespace cada::chart
