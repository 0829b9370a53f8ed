// Test helper: a fresh directory under $TEST_TMPDIR and small file utilities.
#ifndef TORCH_TENSORRT_RTX_TESTS_CORE_UTIL_TEST_DIR_H_
#define TORCH_TENSORRT_RTX_TESTS_CORE_UTIL_TEST_DIR_H_

#include <stdlib.h>
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

namespace torch_tensorrt_rtx {
namespace testing {

inline std::string MakeTestDir(const std::string& stem) {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string pattern = std::string(base ? base : "/tmp") + "/" + stem + "_XXXXXX";
  if (mkdtemp(&pattern[0]) == nullptr) throw std::runtime_error("mkdtemp failed");
  return pattern;
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream(path, std::ios::binary) << data;
}

inline bool FileExists(const std::string& path) {
  struct stat info;
  return stat(path.c_str(), &info) == 0;
}

}  // namespace testing
}  // namespace torch_tensorrt_rtx

#endif  // TORCH_TENSORRT_RTX_TESTS_CORE_UTIL_TEST_DIR_H_
