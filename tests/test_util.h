// Helpers that several test files share (one definition each: a layer's tests are compiled as one
// unit in a unity build).
#pragma once

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "cada/io/files.h"

namespace cada::testing_util {

// The largest absolute difference between two tensors of one shape (0 for empty ones).
inline double max_diff(const at::Tensor& a, const at::Tensor& b) {
  return a.numel() == 0 ? 0.0 : (a - b).abs().max().item<double>();
}

// A fresh empty folder under the test's temporary directory, unique to this process.
inline std::string fresh_dir(const std::string& name) {
  std::string dir = ::testing::TempDir() + "/" + name + "_" + std::to_string(getpid());
  cada::io::remove_tree(dir);
  cada::io::make_dirs(dir);
  return dir;
}

}  // namespace cada::testing_util
