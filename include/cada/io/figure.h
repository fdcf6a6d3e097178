// Writes a chart as <stem>.png and <stem>.svg, each atomically (io/files.h).
#pragma once

#include <string>

#include "cada/util/chart.h"

namespace cada::io {

void write_figure(const std::string& stem, const chart::Figure& fig);

}  // namespace cada::io
