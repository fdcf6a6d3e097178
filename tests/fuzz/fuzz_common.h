// Shared pieces of the libFuzzer targets in tests/fuzz (see scripts/fuzz.sh).
//
// A target feeds the fuzz input to one parser. A thrown std::exception (cada::Error, or a
// library's own exception type) is the parser rejecting the input and is caught; crashes,
// sanitizer reports, hangs and FUZZ_CHECK failures (a broken invariant, e.g. a round trip
// that changes the data) are what the fuzzer reports.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "cada/io/files.h"
#include "cada/util/error.h"

namespace cada::fuzz {

// Aborts (a crash for libFuzzer) with the failed condition when an invariant does not hold.
#define FUZZ_CHECK(cond)                                                                   \
  do {                                                                                     \
    if (!(cond)) {                                                                         \
      std::fprintf(stderr, "FUZZ_CHECK failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                        \
    }                                                                                      \
  } while (0)

// A scratch folder under $TMPDIR (default /tmp) for parsers that take a path, created once
// per process and removed at exit (left behind only when the process crashes).
inline const std::string& scratch_dir() {
  static const std::string dir = [] {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/cada_fuzz_XXXXXX";
    if (!::mkdtemp(tmpl.data())) {
      std::perror("cada fuzz: mkdtemp");
      std::abort();
    }
    static std::string removed_at_exit;
    removed_at_exit = tmpl;
    std::atexit([] {
      try {
        io::remove_tree(removed_at_exit);
      } catch (...) {
      }
    });
    return tmpl;
  }();
  return dir;
}

// A model folder inside scratch_dir(), for the tokenizer and template targets.
inline const std::string& model_dir() {
  static const std::string dir = [] {
    std::string d = scratch_dir() + "/model";
    io::make_dirs(d);
    return d;
  }();
  return dir;
}

// Writes `bytes` to `path` (replacing it); plain write(2), no fsync, since fuzzing writes
// thousands of files a second.
inline void write_file(const std::string& path, const std::string& bytes) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    std::perror(path.c_str());
    std::abort();
  }
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (w <= 0) {
      std::perror(path.c_str());
      std::abort();
    }
    done += static_cast<size_t>(w);
  }
  ::close(fd);
}

inline void remove_if_present(const std::string& path) { ::unlink(path.c_str()); }

// Splits `text` at each line that is exactly `marker` ("%%" in the seeds): the first part is
// the main input, the others extra files or options, depending on the target. The line break
// before a marker line belongs to the separator; without a marker the text comes back whole.
inline std::vector<std::string> split_parts(const std::string& text, const std::string& marker = "%%") {
  std::vector<std::string> parts(1);
  size_t i = 0;
  while (i <= text.size()) {
    size_t nl = text.find('\n', i);
    const std::string line = text.substr(i, nl == std::string::npos ? std::string::npos : nl - i);
    if (line == marker) {
      if (!parts.back().empty() && parts.back().back() == '\n') parts.back().pop_back();
      parts.emplace_back();
    } else {
      parts.back() += line;
      if (nl != std::string::npos) parts.back() += '\n';
    }
    if (nl == std::string::npos) break;
    i = nl + 1;
  }
  return parts;
}

}  // namespace cada::fuzz
