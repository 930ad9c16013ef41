// Helpers shared by the engine tests.
#pragma once

#include <torch/torch.h>

#include <QtTest/QtTest>
#include <algorithm>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "wan/error.h"

namespace wan_test {

inline std::string data_dir() { return WAN_TEST_DATA_DIR; }
inline std::string golden(const std::string& c) { return data_dir() + "/golden/" + c; }

inline double rel_l2(const torch::Tensor& out, const torch::Tensor& ref) {
  const torch::Tensor o = out.to(torch::kFloat64), r = ref.to(torch::kFloat64);
  return (o - r).norm().item<double>() / r.norm().item<double>();
}

// Links every entry of folder `from` into folder `to`, except the names in `leave_out` (a fixture copy
// with some files replaced or missing).
inline void link_folder(const std::string& from, const std::string& to, const std::vector<std::string>& leave_out) {
  namespace fs = std::filesystem;
  for (const auto& e : fs::directory_iterator(from))
    if (std::find(leave_out.begin(), leave_out.end(), e.path().filename().string()) == leave_out.end())
      fs::create_symlink(fs::absolute(e.path()), fs::path(to) / e.path().filename());
}

// Runs fn, which must throw wan::Error with `code` and a message containing every needle.
inline void expect_error(const std::function<void()>& fn, wan::ErrorCode code,
                         std::initializer_list<std::string> needles) {
  try {
    fn();
  } catch (const wan::Error& e) {
    const std::string msg = e.what();
    QVERIFY2(e.code() == code, ("unexpected code for: " + msg).c_str());
    QVERIFY2(msg.find('\n') == std::string::npos, ("message is not one line: " + msg).c_str());
    for (const std::string& n : needles)
      QVERIFY2(msg.find(n) != std::string::npos, ("'" + n + "' not in: " + msg).c_str());
    return;
  }
  QFAIL("expected a wan::Error, nothing was thrown");
}

}  // namespace wan_test
