// Test helper: a fresh directory for one test, and small file utilities. Portable: the
// Linux gtest suites use it through Bazel, the Windows ones through scripts/windows_test.sh.
//
//   const std::string dir = testing::MakeTestDir("file_lock_test");  // under $TEST_TMPDIR
//   testing::WriteFile(dir + "/a", "bytes");
//   EXPECT_EQ(testing::ReadFile(dir + "/a"), "bytes");
//
// Paths are UTF-8 strings on both platforms (on Windows they are converted to wide paths,
// as the code under test does). The directory is left for Bazel (or the Windows script)
// to clean up.
#ifndef TORCH_TENSORRT_RTX_TESTS_CORE_UTIL_TEST_DIR_H_
#define TORCH_TENSORRT_RTX_TESTS_CORE_UTIL_TEST_DIR_H_

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

#ifdef _WIN32
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#else
#include <stdlib.h>
#include <sys/stat.h>
#endif

namespace torch_tensorrt_rtx {
namespace testing {

#ifdef _WIN32

inline std::wstring Wide(const std::string& utf8) {
  const int length = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, utf8.data(), static_cast<int>(utf8.size()),
                                         nullptr, 0);
  if (length <= 0 && !utf8.empty()) throw std::runtime_error("not UTF-8: " + utf8);
  std::wstring wide(static_cast<size_t>(length), L'\0');
  MultiByteToWideChar(CP_UTF8, 0, utf8.data(), static_cast<int>(utf8.size()), &wide[0], length);
  return wide;
}

inline std::string MakeTestDir(const std::string& stem) {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string parent = base ? base : "";
  if (parent.empty()) {
    wchar_t temp[MAX_PATH + 1];
    const DWORD n = GetTempPathW(MAX_PATH + 1, temp);
    if (n == 0) throw std::runtime_error("GetTempPathW failed");
    const int length = WideCharToMultiByte(CP_UTF8, 0, temp, static_cast<int>(n), nullptr, 0, nullptr, nullptr);
    parent.assign(static_cast<size_t>(length), '\0');
    WideCharToMultiByte(CP_UTF8, 0, temp, static_cast<int>(n), &parent[0], length, nullptr, nullptr);
  }
  while (!parent.empty() && (parent.back() == '\\' || parent.back() == '/')) parent.pop_back();
  static unsigned counter = 0;
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const std::string dir = parent + "\\" + stem + "_" + std::to_string(GetCurrentProcessId()) + "_" +
                            std::to_string(GetTickCount64()) + "_" + std::to_string(++counter);
    if (CreateDirectoryW(Wide(dir).c_str(), nullptr)) return dir;
    if (GetLastError() != ERROR_ALREADY_EXISTS) break;
  }
  throw std::runtime_error("cannot create a test directory under " + parent);
}

inline bool FileExists(const std::string& path) {
  return GetFileAttributesW(Wide(path).c_str()) != INVALID_FILE_ATTRIBUTES;
}

// The platform's directory separator, for paths built by tests.
constexpr const char* kSep = "\\";

// Marks a file read-only (FILE_ATTRIBUTE_READONLY) or writable again; false on failure.
inline bool SetReadOnly(const std::string& path, bool read_only) {
  return SetFileAttributesW(Wide(path).c_str(), read_only ? FILE_ATTRIBUTE_READONLY : FILE_ATTRIBUTE_NORMAL);
}

inline std::ifstream OpenIn(const std::string& path) {
  return std::ifstream(Wide(path).c_str(), std::ios::binary);
}
inline std::ofstream OpenOut(const std::string& path) {
  return std::ofstream(Wide(path).c_str(), std::ios::binary | std::ios::trunc);
}

#else

inline std::string MakeTestDir(const std::string& stem) {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string pattern = std::string(base ? base : "/tmp") + "/" + stem + "_XXXXXX";
  if (mkdtemp(&pattern[0]) == nullptr) throw std::runtime_error("mkdtemp failed");
  return pattern;
}

inline bool FileExists(const std::string& path) {
  struct stat info;
  return stat(path.c_str(), &info) == 0;
}

constexpr const char* kSep = "/";

// chmod 0444, or 0644 to make it writable again; false on failure.
inline bool SetReadOnly(const std::string& path, bool read_only) {
  return chmod(path.c_str(), read_only ? 0444 : 0644) == 0;
}

inline std::ifstream OpenIn(const std::string& path) {
  return std::ifstream(path, std::ios::binary);
}
inline std::ofstream OpenOut(const std::string& path) {
  return std::ofstream(path, std::ios::binary | std::ios::trunc);
}

#endif  // _WIN32

inline std::string ReadFile(const std::string& path) {
  std::ifstream in = OpenIn(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void WriteFile(const std::string& path, const std::string& data) {
  OpenOut(path) << data;
}

}  // namespace testing
}  // namespace torch_tensorrt_rtx

#endif  // TORCH_TENSORRT_RTX_TESTS_CORE_UTIL_TEST_DIR_H_
