// A small dependency-free PNG writer and a horizontal bar chart renderer for reports.
//
// PNG: 8-bit RGB (colour type 2), no interlace; the image data is a zlib stream made of
// "stored" (uncompressed) deflate blocks of at most 65535 bytes, each row prefixed with filter
// byte 0, closed by the Adler-32 of the raw data; every chunk carries its CRC-32 (ISO 3309,
// polynomial 0xEDB88320) over the chunk type and data. Any PNG reader decodes the result.
//
//   cada::png::Image img(320, 200, {255, 255, 255});
//   img.fill_rect(10, 10, 50, 20, {200, 0, 0});
//   img.draw_text(10, 40, "ASR 0.25", {0, 0, 0}, 2);
//   cada::png::write_png("plot.png", img);
//
// Text uses a built-in 3x5 bitmap font (ASCII 32..126; lower case is drawn as upper case,
// characters outside the set as '?'), scaled by an integer factor.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace cada::png {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
};

class Image {
 public:
  Image(int width, int height, Rgb background = {255, 255, 255});
  int width() const { return w_; }
  int height() const { return h_; }
  // Row-major RGB triples, width * height * 3 bytes.
  const std::vector<uint8_t>& pixels() const { return px_; }

  void set(int x, int y, Rgb c);  // outside the image: ignored
  Rgb get(int x, int y) const;    // outside the image: throws cada::Error
  // Rectangle [x, x + w) x [y, y + h), clipped to the image.
  void fill_rect(int x, int y, int w, int h, Rgb c);
  void hline(int x0, int x1, int y, Rgb c);
  void vline(int x, int y0, int y1, Rgb c);
  // Draws `text` with its top-left corner at (x, y); returns the x after the last glyph.
  int draw_text(int x, int y, const std::string& text, Rgb c, int scale = 1);

 private:
  int w_, h_;
  std::vector<uint8_t> px_;
};

// Glyph metrics of the built-in font at scale 1: 3x5 pixels plus one column of spacing.
constexpr int kGlyphWidth = 3, kGlyphHeight = 5, kGlyphAdvance = 4;
// Width in pixels of `text` drawn at `scale`.
int text_width(const std::string& text, int scale = 1);

// The encoded PNG file.
std::string encode_png(const Image& img);
// Writes the PNG atomically (temp file, fsync, rename); the folder must exist.
void write_png(const std::string& path, const Image& img);

// The chunk checksum (zlib's crc32(crc, data, n); exposed for tests).
uint32_t crc32(const void* data, size_t n, uint32_t crc = 0);

// One bar of a horizontal bar chart: a value with an optional interval (NaN = none).
struct Bar {
  std::string label;
  double value = 0;
  double lo = std::numeric_limits<double>::quiet_NaN(), hi = std::numeric_limits<double>::quiet_NaN();
  int group = 0;  // picks the colour
};

struct ChartOptions {
  std::string title;
  double max_value = 0;  // axis end; <= 0: 1 when every value is in [0, 1], else the largest value
  int bar_height = 14;
  int plot_width = 360;  // pixels of the bar area
  int scale = 2;         // font scale
};

// Renders the bars top to bottom with labels on the left, value text on the right, whiskers
// for the intervals and an axis with ticks. Bars with a NaN value are drawn as "n/a".
Image bar_chart(const std::vector<Bar>& bars, const ChartOptions& opts = {});

}  // namespace cada::png
