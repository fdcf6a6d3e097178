// The PNG writer: signature, chunk layout and CRCs, the zlib stream (stored blocks + Adler-32),
// decoded back to the raster with an independent reader; checksums against known values.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "cada/util/error.h"
#include "cada/util/png.h"

#include <zlib.h>

namespace {

uint32_t be32(const std::string& s, size_t i) {
  return (uint32_t(uint8_t(s[i])) << 24) | (uint32_t(uint8_t(s[i + 1])) << 16) | (uint32_t(uint8_t(s[i + 2])) << 8) |
         uint32_t(uint8_t(s[i + 3]));
}

// Bitwise CRC-32 (no table), independent of the writer's.
uint32_t slow_crc(const std::string& s) {
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : s) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return ~c;
}

struct Decoded {
  uint32_t w = 0, h = 0;
  std::vector<uint8_t> rgb;
  std::vector<std::string> chunks;
};

// A minimal reader for what the writer emits: checks every CRC and inflates with zlib.
Decoded decode(const std::string& png) {
  Decoded d;
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  std::string idat;
  size_t i = 8;
  while (i + 12 <= png.size()) {
    const uint32_t len = be32(png, i);
    const std::string type = png.substr(i + 4, 4);
    const std::string data = png.substr(i + 8, len);
    EXPECT_EQ(be32(png, i + 8 + len), slow_crc(type + data)) << "CRC of " << type;
    d.chunks.push_back(type);
    if (type == "IHDR") {
      d.w = be32(data, 0);
      d.h = be32(data, 4);
      EXPECT_EQ(data.substr(8), std::string("\x08\x02\x00\x00\x00", 5));
    } else if (type == "IDAT") {
      idat += data;
    }
    i += 12 + len;
  }
  EXPECT_EQ(i, png.size());
  // One zlib stream: inflated by zlib itself, which checks the Adler-32 too.
  EXPECT_EQ(uint8_t(idat[0]), 0x78);
  EXPECT_EQ(((uint8_t(idat[0]) << 8) | uint8_t(idat[1])) % 31, 0);
  std::string raw(static_cast<size_t>(be32(png, 16)) * be32(png, 20) * 3 + be32(png, 20), '\0');
  uLongf rawlen = raw.size();
  EXPECT_EQ(uncompress(reinterpret_cast<Bytef*>(&raw[0]), &rawlen, reinterpret_cast<const Bytef*>(idat.data()),
                       idat.size()),
            Z_OK);
  EXPECT_EQ(rawlen, raw.size());
  const size_t p = idat.size() - 4;
  // Adler-32, computed here by its definition.
  uint32_t a = 1, b = 0;
  for (unsigned char c : raw) {
    a = (a + c) % 65521;
    b = (b + a) % 65521;
  }
  EXPECT_EQ(be32(idat, p), (b << 16) | a);
  EXPECT_EQ(p + 4, idat.size());
  EXPECT_EQ(raw.size(), size_t(d.h) * (1 + 3 * size_t(d.w)));
  for (uint32_t y = 0; y < d.h; ++y) {
    EXPECT_EQ(raw[y * (1 + 3 * d.w)], '\0') << "filter type 0";
    for (uint32_t x = 0; x < 3 * d.w; ++x) d.rgb.push_back(uint8_t(raw[y * (1 + 3 * d.w) + 1 + x]));
  }
  return d;
}

}  // namespace

TEST(Png, ChecksumsMatchKnownValues) {
  EXPECT_EQ(cada::png::crc32("123456789", 9), 0xCBF43926u);  // the CRC-32 check value
  EXPECT_EQ(cada::png::crc32("", 0), 0u);
  // Incremental use equals one pass.
  EXPECT_EQ(cada::png::crc32("6789", 4, cada::png::crc32("12345", 5)), 0xCBF43926u);
}

TEST(Png, SmallImageRoundTrips) {
  cada::png::Image img(3, 2, {10, 20, 30});
  img.set(0, 0, {255, 0, 0});
  img.set(2, 1, {0, 0, 255});
  img.set(5, 5, {1, 2, 3});  // outside: ignored
  const auto d = decode(cada::png::encode_png(img));
  EXPECT_EQ(d.w, 3u);
  EXPECT_EQ(d.h, 2u);
  EXPECT_EQ(d.chunks, (std::vector<std::string>{"IHDR", "IDAT", "IEND"}));
  EXPECT_EQ(d.rgb, img.pixels());
  EXPECT_EQ(d.rgb[0], 255);
  EXPECT_EQ(d.rgb[3 * 3 + 2 * 3 + 2], 255);
  EXPECT_THROW(img.get(3, 0), cada::Error);
}

TEST(Png, LargeImageSpansSeveralStoredBlocks) {
  cada::png::Image img(300, 200);  // 200 * 901 bytes > 65535: three blocks
  for (int y = 0; y < 200; ++y)
    for (int x = 0; x < 300; ++x) img.set(x, y, {uint8_t(x), uint8_t(y), uint8_t(x ^ y)});
  const auto d = decode(cada::png::encode_png(img));
  EXPECT_EQ(d.rgb, img.pixels());
}

TEST(Png, TextAndBarChartDrawInk) {
  cada::png::Image img(40, 12);
  const int end = img.draw_text(1, 1, "A1", {0, 0, 0}, 2);
  EXPECT_EQ(end, 1 + 2 * cada::png::kGlyphAdvance * 2);
  EXPECT_EQ(cada::png::text_width("A1", 2), (2 * 4 - 1) * 2);
  // 'A' has ink at its top middle (row 0, column 1) and none at the top-left corner.
  EXPECT_EQ(img.get(1 + 2, 1).r, 0);
  EXPECT_EQ(img.get(1, 1).r, 255);
  // Unknown characters are drawn as '?', lower case as upper case.
  cada::png::Image a(12, 6), b(12, 6);
  a.draw_text(0, 0, "x", {0, 0, 0});
  b.draw_text(0, 0, "X", {0, 0, 0});
  EXPECT_EQ(a.pixels(), b.pixels());

  std::vector<cada::png::Bar> bars = {{"none", 0.25, 0.1, 0.4, 0}, {"base64", 0.75, 0.5, 0.9, 1},
                                      {"n/a", std::nan(""), std::nan(""), std::nan(""), 0}};
  cada::png::ChartOptions o;
  o.title = "asr";
  auto chart = cada::png::bar_chart(bars, o);
  EXPECT_GT(chart.width(), o.plot_width);
  const auto d = decode(cada::png::encode_png(chart));
  EXPECT_EQ(d.rgb, chart.pixels());
  // The second bar is longer than the first: count coloured pixels per bar row.
  auto coloured = [&](int y) {
    int n = 0;
    for (int x = 0; x < chart.width(); ++x) {
      auto c = chart.get(x, y);
      n += (c.r != c.g || c.g != c.b);
    }
    return n;
  };
  int first = 0, second = 0;
  for (int y = 0; y < chart.height(); ++y) {
    const int n = coloured(y);
    if (n > 0 && first == 0) first = n;
    if (n > first + 10) second = n;
  }
  EXPECT_GT(first, 0);
  EXPECT_NEAR(double(second) / first, 3.0, 0.1);  // 0.75 / 0.25
}
