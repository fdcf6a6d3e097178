#include "cada/io/figure.h"

#include "cada/io/files.h"

namespace cada::io {

void write_figure(const std::string& stem, const chart::Figure& fig) {
  atomic_write_file(stem + ".png", fig.encode(chart::Format::png));
  atomic_write_file(stem + ".svg", fig.encode(chart::Format::svg));
}

}  // namespace cada::io
