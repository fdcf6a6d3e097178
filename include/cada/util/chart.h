// Charts for reports and training runs, drawn with cairo: anti-aliased vector drawing and real
// fonts (DejaVu Sans, else fontconfig's sans-serif), encoded as PNG or SVG.
//
//   auto fig = cada::chart::bar_chart({{"base", 0.31, 0.25, 0.37}, {"sft", 0.91}}, {"refusal rate"});
//   io::atomic_write_file("report.png", fig.encode(cada::chart::Format::png));
//   io::atomic_write_file("report.svg", fig.encode(cada::chart::Format::svg));
//
// A Figure is a recorded drawing (a cairo recording surface) of a fixed size in points; it is
// replayed into a raster (PNG, `png_scale` pixels per point, default 2 for sharp text) or into
// SVG, so both files show the same picture. Encoding is pure: callers write the bytes (atomically,
// through io/files.h).
#pragma once

#include <limits>
#include <memory>
#include <string>
#include <vector>

namespace cada::chart {

enum class Format { png, svg };
// The format named by a path's extension (".png" / ".svg"); throws cada::Error for any other.
Format format_of(const std::string& path);

class Figure {
 public:
  struct Impl;
  Figure(double width, double height);
  double width() const;
  double height() const;
  std::string encode(Format f, double png_scale = 2.0) const;
  Impl& impl() const { return *impl_; }

 private:
  std::shared_ptr<Impl> impl_;
};

// One bar of a horizontal bar chart: a value with an optional interval (NaN = none).
struct Bar {
  std::string label;
  double value = 0;
  double lo = std::numeric_limits<double>::quiet_NaN(), hi = std::numeric_limits<double>::quiet_NaN();
  int group = 0;  // picks the colour
};

struct BarOptions {
  std::string title;
  double max_value = 0;  // axis end; <= 0: 1 when every value is in [0, 1], else the largest value
  double bar_height = 16;
  double plot_width = 360;  // points of the bar area
};

// Bars top to bottom with labels on the left, the value (and interval) on the right, whiskers for
// the intervals and a gridded axis. Bars with a NaN value read "n/a".
Figure bar_chart(const std::vector<Bar>& bars, const BarOptions& opts = {});

// One line of a panel: y against x; NaN values break the line.
struct Series {
  std::string name;
  std::vector<double> x, y;
};

struct Panel {
  std::string title;
  std::string x_label;
  std::vector<Series> series;
};

struct PanelOptions {
  std::string title;
  int columns = 2;
  double panel_width = 320, panel_height = 200;
};

// Panels in a grid, each with its own axes (ticks at round numbers), grid lines and a legend when
// it has more than one series. A panel without finite points reads "no data".
Figure line_panels(const std::vector<Panel>& panels, const PanelOptions& opts = {});

// Round tick values covering [lo, hi] with about `target` steps (1, 2 or 5 times a power of ten).
std::vector<double> nice_ticks(double lo, double hi, int target = 5);
// nice_ticks for an axis of whole numbers (training steps): whole-number ticks only, at least 1
// apart, so a two-step run is not labelled 1, 1.2, 1.4, ...
std::vector<double> whole_ticks(double lo, double hi, int target = 5);

}  // namespace cada::chart
