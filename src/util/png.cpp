// PNG writer (zlib-compressed), 3x5 bitmap font and a horizontal bar chart.
#include "cada/util/png.h"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cerrno>
#include <cstring>

#include <unistd.h>

#include "cada/util/error.h"

namespace cada::png {

// ------------------------------------------------------------------ checksums

uint32_t crc32(const void* data, size_t n, uint32_t crc) {
  return static_cast<uint32_t>(::crc32(crc, static_cast<const Bytef*>(data), static_cast<uInt>(n)));
}

// ------------------------------------------------------------------ image

Image::Image(int width, int height, Rgb bg) : w_(width), h_(height) {
  CADA_CHECK(width > 0 && height > 0 && width <= 16384 && height <= 16384, "png: image size ", width, "x", height,
             " is out of range (1..16384 per side)");
  px_.resize(static_cast<size_t>(w_) * h_ * 3);
  for (size_t i = 0; i < px_.size(); i += 3) {
    px_[i] = bg.r;
    px_[i + 1] = bg.g;
    px_[i + 2] = bg.b;
  }
}

void Image::set(int x, int y, Rgb c) {
  if (x < 0 || y < 0 || x >= w_ || y >= h_) return;
  const size_t i = (static_cast<size_t>(y) * w_ + x) * 3;
  px_[i] = c.r;
  px_[i + 1] = c.g;
  px_[i + 2] = c.b;
}

Rgb Image::get(int x, int y) const {
  CADA_CHECK(x >= 0 && y >= 0 && x < w_ && y < h_, "png: pixel (", x, ", ", y, ") is outside the ", w_, "x", h_,
             " image");
  const size_t i = (static_cast<size_t>(y) * w_ + x) * 3;
  return {px_[i], px_[i + 1], px_[i + 2]};
}

void Image::fill_rect(int x, int y, int w, int h, Rgb c) {
  const int x0 = std::max(0, x), y0 = std::max(0, y), x1 = std::min(w_, x + w), y1 = std::min(h_, y + h);
  for (int yy = y0; yy < y1; ++yy)
    for (int xx = x0; xx < x1; ++xx) set(xx, yy, c);
}

void Image::hline(int x0, int x1, int y, Rgb c) {
  if (x0 > x1) std::swap(x0, x1);
  fill_rect(x0, y, x1 - x0 + 1, 1, c);
}

void Image::vline(int x, int y0, int y1, Rgb c) {
  if (y0 > y1) std::swap(y0, y1);
  fill_rect(x, y0, 1, y1 - y0 + 1, c);
}

// ------------------------------------------------------------------ font

namespace {

// 3x5 glyphs, rows top to bottom, '#' = ink. Lower case maps to upper case.
const char* glyph(char ch) {
  if (ch >= 'a' && ch <= 'z') ch = static_cast<char>(ch - 'a' + 'A');
  switch (ch) {
    case ' ': return "               ";
    case '0': return "#### ## ## ####";
    case '1': return " # ##  #  # ###";
    case '2': return "###  #####  ###";
    case '3': return "###  # ##  ####";
    case '4': return "# ## ####  #  #";
    case '5': return "####  ###  ####";
    case '6': return "####  #### ####";
    case '7': return "###  #  # #  # ";
    case '8': return "#### ##### ####";
    case '9': return "#### ####  ####";
    case 'A': return " # # ##### ## #";
    case 'B': return "## # ### # ### ";
    case 'C': return " ###  #  #   ##";
    case 'D': return "## # ## ## ### ";
    case 'E': return "####  ## #  ###";
    case 'F': return "####  ## #  #  ";
    case 'G': return " ###  # ## # ##";
    case 'H': return "# ## ##### ## #";
    case 'I': return "### #  #  # ###";
    case 'J': return "  #  #  ## # # ";
    case 'K': return "# ## ### # ## #";
    case 'L': return "#  #  #  #  ###";
    case 'M': return "# ######## ## #";
    case 'N': return "## # ## ## ## #";
    case 'O': return " # # ## ## # # ";
    case 'P': return "## # ### #  #  ";
    case 'Q': return " # # ## #### ##";
    case 'R': return "## # ### # ## #";
    case 'S': return " ###   #   ### ";
    case 'T': return "### #  #  #  # ";
    case 'U': return "# ## ## ## ####";
    case 'V': return "# ## ## ## # # ";
    case 'W': return "# ## ######## #";
    case 'X': return "# ## # # # ## #";
    case 'Y': return "# ## # #  #  # ";
    case 'Z': return "###  # # #  ###";
    case '.': return "             # ";
    case ',': return "          # #  ";
    case ':': return "    #     #    ";
    case ';': return "    #     # #  ";
    case '-': return "      ###      ";
    case '_': return "            ###";
    case '/': return "  #  # # #  #  ";
    case '\\': return "#  #   #   #  #";
    case '%': return "# #  # # #  # #";
    case '(': return " # #  #  #   # ";
    case ')': return " #   #  #  # # ";
    case '[': return "## #  #  #  ## ";
    case ']': return " ##  #  #  # ##";
    case '{': return " ## # #   #  ##";
    case '}': return "##  #   # # ## ";
    case '<': return "  # # #   #   #";
    case '>': return "#   #   # # #  ";
    case '+': return "    # ### #    ";
    case '=': return "   ###   ###   ";
    case '*': return "# # # # #      ";
    case '#': return "# ##### ##### #";
    case '!': return " #  #  #     # ";
    case '?': return "###  # ##    # ";
    case '\'': return " #  #          ";
    case '"': return "# ## #         ";
    case '`': return "#   #          ";
    case '^': return " # # #         ";
    case '~': return "   ##   ##     ";
    case '|': return " #  #  #  #  # ";
    case '&': return " # # # # # # ##";
    case '@': return "#### #####  ###";
    case '$': return " ###   #   ### ";
    default: return nullptr;
  }
}

}  // namespace

int text_width(const std::string& text, int scale) {
  return text.empty() ? 0 : (static_cast<int>(text.size()) * kGlyphAdvance - 1) * scale;
}

int Image::draw_text(int x, int y, const std::string& text, Rgb c, int scale) {
  for (char ch : text) {
    const char* g = glyph(ch);
    if (!g) g = glyph('?');
    for (int r = 0; r < kGlyphHeight; ++r)
      for (int col = 0; col < kGlyphWidth; ++col)
        if (g[r * kGlyphWidth + col] == '#') fill_rect(x + col * scale, y + r * scale, scale, scale, c);
    x += kGlyphAdvance * scale;
  }
  return x;
}

// ------------------------------------------------------------------ encoder

namespace {

void put_u32(std::string& s, uint32_t v) {
  s.push_back(static_cast<char>(v >> 24));
  s.push_back(static_cast<char>(v >> 16));
  s.push_back(static_cast<char>(v >> 8));
  s.push_back(static_cast<char>(v));
}

void put_chunk(std::string& out, const char* type, const std::string& data) {
  put_u32(out, static_cast<uint32_t>(data.size()));
  std::string body(type, 4);
  body += data;
  out += body;
  put_u32(out, crc32(body.data(), body.size()));
}

}  // namespace

std::string encode_png(const Image& img) {
  const int w = img.width(), h = img.height();
  // Raw scanlines: filter type 0 (None) then the RGB bytes.
  std::string raw;
  raw.reserve(static_cast<size_t>(h) * (1 + 3 * static_cast<size_t>(w)));
  const auto& px = img.pixels();
  for (int y = 0; y < h; ++y) {
    raw.push_back('\0');
    raw.append(reinterpret_cast<const char*>(px.data()) + static_cast<size_t>(y) * w * 3, static_cast<size_t>(w) * 3);
  }
  // The IDAT payload is one zlib stream (deflate, Adler-32); charts of flat colours shrink ~50x.
  uLongf zlen = compressBound(static_cast<uLong>(raw.size()));
  std::string z(zlen, '\0');
  const int rc = compress2(reinterpret_cast<Bytef*>(&z[0]), &zlen, reinterpret_cast<const Bytef*>(raw.data()),
                           static_cast<uLong>(raw.size()), 6);
  CADA_CHECK(rc == Z_OK, "PNG: zlib compress2 failed with code ", rc);
  z.resize(zlen);

  std::string out = "\x89PNG\r\n\x1a\n";
  std::string ihdr;
  put_u32(ihdr, static_cast<uint32_t>(w));
  put_u32(ihdr, static_cast<uint32_t>(h));
  ihdr += std::string("\x08\x02\x00\x00\x00", 5);  // depth 8, RGB, deflate, filter 0, no interlace
  put_chunk(out, "IHDR", ihdr);
  put_chunk(out, "IDAT", z);
  put_chunk(out, "IEND", "");
  return out;
}

void write_png(const std::string& path, const Image& img) {
  // util sits below io, so the atomic write (temp file, fsync, rename) is done here.
  const std::string data = encode_png(img);
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  CADA_CHECK(f != nullptr, "cannot write ", tmp, ": ", std::strerror(errno));
  const bool ok = std::fwrite(data.data(), 1, data.size(), f) == data.size() && std::fflush(f) == 0 &&
                  ::fsync(::fileno(f)) == 0;
  const int err = errno;
  std::fclose(f);
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = ok ? errno : err;
    std::remove(tmp.c_str());
    CADA_FAIL("cannot write ", path, ": ", std::strerror(e));
  }
}

// ------------------------------------------------------------------ bar chart

namespace {

const Rgb kPalette[] = {{66, 114, 196}, {221, 132, 82}, {85, 168, 104}, {196, 78, 82},
                        {129, 114, 179}, {147, 120, 96}, {218, 139, 195}, {140, 140, 140}};

std::string fmt(double v) {
  char b[32];
  std::snprintf(b, sizeof b, std::fabs(v) >= 100 ? "%.0f" : (std::fabs(v) >= 10 ? "%.1f" : "%.3f"), v);
  return b;
}

}  // namespace

Image bar_chart(const std::vector<Bar>& bars, const ChartOptions& o) {
  const int s = std::max(1, o.scale);
  const int char_h = kGlyphHeight * s;
  int label_w = 0;
  for (const auto& b : bars) label_w = std::max(label_w, text_width(b.label, s));
  double vmax = o.max_value;
  if (vmax <= 0) {
    bool unit = true;
    double m = 0;
    for (const auto& b : bars) {
      for (double v : {b.value, b.hi})
        if (std::isfinite(v)) {
          m = std::max(m, v);
          if (v < 0 || v > 1) unit = false;
        }
    }
    vmax = unit ? 1.0 : (m > 0 ? m : 1.0);
  }
  const int pad = 8, gap = 4;
  const int bar_h = std::max(o.bar_height, char_h + 2);
  const int title_h = o.title.empty() ? 0 : char_h + 2 * pad;
  const int plot_x = pad + label_w + 2 * gap;
  const int value_w = text_width("0.000 [0.000, 0.000]", s);
  const int width = plot_x + o.plot_width + 2 * gap + value_w + pad;
  const int rows = std::max<int>(1, static_cast<int>(bars.size()));
  const int plot_y = title_h + pad;
  const int axis_y = plot_y + rows * (bar_h + gap);
  const int height = axis_y + gap + char_h + 2 * pad;
  Image img(std::max(width, text_width(o.title, s) + 2 * pad), height);
  const Rgb black{0, 0, 0}, grey{200, 200, 200};
  if (!o.title.empty()) img.draw_text(pad, pad, o.title, black, s);
  auto xpos = [&](double v) {
    v = std::max(0.0, std::min(v, vmax));
    return plot_x + static_cast<int>(std::lround(v / vmax * o.plot_width));
  };
  // Grid and axis ticks at quarters.
  for (int k = 0; k <= 4; ++k) {
    const double v = vmax * k / 4.0;
    const int x = xpos(v);
    img.vline(x, plot_y, axis_y, k == 0 ? black : grey);
    const std::string t = fmt(v);
    img.draw_text(x - text_width(t, s) / 2, axis_y + gap, t, black, s);
  }
  img.hline(plot_x, plot_x + o.plot_width, axis_y, black);
  for (size_t i = 0; i < bars.size(); ++i) {
    const auto& b = bars[i];
    const int y = plot_y + static_cast<int>(i) * (bar_h + gap);
    const int ty = y + (bar_h - char_h) / 2;
    img.draw_text(plot_x - 2 * gap - text_width(b.label, s), ty, b.label, black, s);
    std::string val;
    if (std::isfinite(b.value)) {
      const Rgb c = kPalette[static_cast<size_t>(std::abs(b.group)) % (sizeof kPalette / sizeof kPalette[0])];
      img.fill_rect(plot_x + 1, y, xpos(b.value) - plot_x, bar_h, c);
      val = fmt(b.value);
      if (std::isfinite(b.lo) && std::isfinite(b.hi)) {
        const int mid = y + bar_h / 2;
        img.hline(xpos(b.lo), xpos(b.hi), mid, black);
        img.vline(xpos(b.lo), mid - bar_h / 4, mid + bar_h / 4, black);
        img.vline(xpos(b.hi), mid - bar_h / 4, mid + bar_h / 4, black);
        val += " [" + fmt(b.lo) + ", " + fmt(b.hi) + "]";
      }
    } else {
      val = "n/a";
    }
    img.draw_text(plot_x + o.plot_width + 2 * gap, ty, val, black, s);
  }
  return img;
}

}  // namespace cada::png
