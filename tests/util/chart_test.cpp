// Charts drawn with cairo: the PNG decodes (by cairo's own reader) to the figure's size, the bars
// and lines sit where the data puts them in their palette colours, SVG is a complete SVG document,
// and the tick and format helpers.
#include <gtest/gtest.h>

#include <cairo.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>
#include <string>

#include "cada/util/chart.h"
#include "cada/util/error.h"

namespace {

using cada::chart::Format;

struct Raster {
  int w = 0, h = 0;
  std::vector<uint32_t> px;  // 0x00RRGGBB
  uint32_t at(int x, int y) const { return px[static_cast<size_t>(y) * w + x] & 0xFFFFFFu; }
};

cairo_status_t read_from(void* closure, unsigned char* data, unsigned int n) {
  auto* s = static_cast<std::pair<const std::string*, size_t>*>(closure);
  if (s->second + n > s->first->size()) return CAIRO_STATUS_READ_ERROR;
  std::memcpy(data, s->first->data() + s->second, n);
  s->second += n;
  return CAIRO_STATUS_SUCCESS;
}

Raster decode(const std::string& png) {
  std::pair<const std::string*, size_t> src{&png, 0};
  cairo_surface_t* s = cairo_image_surface_create_from_png_stream(read_from, &src);
  EXPECT_EQ(cairo_surface_status(s), CAIRO_STATUS_SUCCESS);
  Raster r;
  r.w = cairo_image_surface_get_width(s);
  r.h = cairo_image_surface_get_height(s);
  const int stride = cairo_image_surface_get_stride(s);
  const unsigned char* d = cairo_image_surface_get_data(s);
  for (int y = 0; y < r.h; ++y)
    for (int x = 0; x < r.w; ++x) r.px.push_back(*reinterpret_cast<const uint32_t*>(d + y * stride + 4 * x));
  cairo_surface_destroy(s);
  return r;
}

// Palette colour 0 and 1 as 8-bit RGB (chart_figure.cpp's palette).
const uint32_t kBlue = (66u << 16) | (115u << 8) | 196u, kOrange = (222u << 16) | (133u << 8) | 82u;

bool near_colour(uint32_t a, uint32_t b, int tol = 3) {
  for (int sh : {0, 8, 16})
    if (std::abs(int((a >> sh) & 255) - int((b >> sh) & 255)) > tol) return false;
  return true;
}

int count(const Raster& r, uint32_t colour, int x0, int x1) {
  int n = 0;
  for (int y = 0; y < r.h; ++y)
    for (int x = std::max(0, x0); x < std::min(r.w, x1); ++x) n += near_colour(r.at(x, y), colour);
  return n;
}

}  // namespace

TEST(Chart, BarLengthsFollowTheValues) {
  cada::chart::BarOptions o;
  o.title = "refusal rate";
  const auto fig = cada::chart::bar_chart({{"base", 0.25, 0.2, 0.3, 0}, {"sft", 1.0, 0.9, 1.0, 1}}, o);
  const auto r = decode(fig.encode(Format::png, 1.0));
  ASSERT_EQ(r.w, static_cast<int>(fig.width()));
  ASSERT_EQ(r.h, static_cast<int>(fig.height()));
  // Per row, the width of the coloured run: the second bar (1.0) is four times the first (0.25).
  auto run = [&](uint32_t c) {
    int best = 0;
    for (int y = 0; y < r.h; ++y) {
      int n = 0;
      for (int x = 0; x < r.w; ++x) n += near_colour(r.at(x, y), c);
      best = std::max(best, n);
    }
    return best;
  };
  const int a = run(kBlue), b = run(kOrange);
  ASSERT_GT(a, 10);
  EXPECT_NEAR(static_cast<double>(b) / a, 4.0, 0.25);
  EXPECT_NEAR(b, o.plot_width, 3);
}

TEST(Chart, MissingValuesDrawNoBar) {
  const auto fig = cada::chart::bar_chart({{"x", std::nan("")}});
  const auto r = decode(fig.encode(Format::png, 1.0));
  EXPECT_EQ(count(r, kBlue, 0, r.w), 0);
}

TEST(Chart, PngScaleMultipliesPixels) {
  const auto fig = cada::chart::bar_chart({{"x", 0.5}});
  const auto r = decode(fig.encode(Format::png, 2.0));
  EXPECT_EQ(r.w, 2 * static_cast<int>(fig.width()));
  EXPECT_EQ(r.h, 2 * static_cast<int>(fig.height()));
}

TEST(Chart, SvgIsACompleteDocument) {
  const auto svg = cada::chart::bar_chart({{"x", 0.5}}).encode(Format::svg);
  EXPECT_EQ(svg.rfind("<?xml", 0), 0u);
  EXPECT_NE(svg.find("<svg"), std::string::npos);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
}

TEST(Chart, LinePanelsDrawEachSeriesInItsColour) {
  cada::chart::Panel left{"reward", "step", {{"reward", {0, 1, 2, 3}, {0.1, 0.5, 0.4, 0.9}}}};
  cada::chart::Panel right{"loss", "step", {{"a", {0, 1}, {1, 2}}, {"b", {0, 1}, {2, 1}}}};
  cada::chart::PanelOptions o;
  o.title = "run";
  const auto fig = cada::chart::line_panels({left, right}, o);
  EXPECT_DOUBLE_EQ(fig.width(), 20 + 2 * o.panel_width);
  const auto r = decode(fig.encode(Format::png, 1.0));
  const int mid = static_cast<int>(10 + o.panel_width);
  EXPECT_GT(count(r, kBlue, 0, mid), 20);     // the left panel's one series
  EXPECT_EQ(count(r, kOrange, 0, mid), 0);    // no second series on the left
  EXPECT_GT(count(r, kOrange, mid, r.w), 20); // the right panel's second series
}

TEST(Chart, NanBreaksALineAndEmptyPanelsSayNoData) {
  cada::chart::Panel p{"gap", "", {{"s", {0, 1, 2, 3}, {0, NAN, NAN, 1}}}};
  cada::chart::Panel empty{"none", "", {{"s", {}, {}}}};
  EXPECT_NO_THROW(cada::chart::line_panels({p, empty}).encode(Format::png));
}

TEST(Chart, NiceTicksAreRoundAndCoverTheRange) {
  const auto t = cada::chart::nice_ticks(0.013, 0.92, 5);
  ASSERT_GE(t.size(), 2u);
  EXPECT_LE(t.front(), 0.013);
  EXPECT_GE(t.back(), 0.92);
  EXPECT_NEAR(t[1] - t[0], 0.2, 1e-12);
  const auto u = cada::chart::nice_ticks(3, 3);  // a flat series still gets an axis
  EXPECT_LT(u.front(), 3);
  EXPECT_GT(u.back(), 3);
  const auto big = cada::chart::nice_ticks(0, 1234, 4);
  EXPECT_NEAR(big[1] - big[0], 500, 1e-9);
}

TEST(Chart, WholeTicksForSteps) {
  EXPECT_EQ(cada::chart::whole_ticks(1, 2), (std::vector<double>{1, 2}));  // two GRPO steps
  EXPECT_EQ(cada::chart::whole_ticks(1, 4), (std::vector<double>{1, 2, 3, 4}));
  const auto one = cada::chart::whole_ticks(5, 5);  // one step still gets an axis
  EXPECT_EQ(one, (std::vector<double>{4, 5, 6}));
  const auto many = cada::chart::whole_ticks(1, 400);
  EXPECT_LE(many.front(), 1);
  EXPECT_GE(many.back(), 400);
  for (double t : many) EXPECT_EQ(t, std::floor(t));
}

TEST(Chart, FormatFromExtension) {
  EXPECT_EQ(cada::chart::format_of("a/report.png"), Format::png);
  EXPECT_EQ(cada::chart::format_of("a/report.SVG"), Format::svg);
  try {
    cada::chart::format_of("report.jpg");
    FAIL();
  } catch (const cada::Error& e) {
    EXPECT_NE(std::string(e.what()).find("report.jpg must end in .png or .svg"), std::string::npos);
  }
}
