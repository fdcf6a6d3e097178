// Helpers for the safety-layer unit tests (no std::filesystem: the layer links libtorch).
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <string>

#include "cada/io/files.h"

namespace cada::safety::testing {

// The repository root: this header is <root>/tests/safety/safety_test_util.h (CMake compiles the
// tests with absolute source paths).
inline std::string repo_root() {
  std::string p = __FILE__;
  for (int i = 0; i < 3; ++i) {
    const auto slash = p.find_last_of('/');
    p = slash == std::string::npos ? "." : p.substr(0, slash);
  }
  return p.empty() ? "/" : p;
}
inline std::string repo_file(const std::string& rel) { return repo_root() + "/" + rel; }

// A fresh empty folder, removed at scope exit.
class ScratchDir {
 public:
  ScratchDir() {
    std::string tmpl = ::testing::TempDir() + "/cada_safety_XXXXXX";
    char* p = ::mkdtemp(&tmpl[0]);
    if (p) path_ = p;
  }
  ~ScratchDir() {
    if (!path_.empty()) io::remove_tree(path_);
  }
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// The message of the cada::Error `fn` throws ("" when it throws nothing).
template <class F>
std::string error_of(F&& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace cada::safety::testing
