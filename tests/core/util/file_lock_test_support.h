// Test support shared by the FileLock suites: the fixture, and the child modes of the test
// program, which runs a second process of itself to show that the lock excludes processes.
//
//   file_lock_test --hold-lock PATH shared|exclusive    locks, prints "locked", holds the
//                                                        lock until its stdin closes
//   file_lock_test --try-lock PATH shared|exclusive MS   exit 0 if locked within MS ms,
//                                                        kExitTimedOut if not
//
// The portable cases are in file_lock_test.cpp (which has main()), the POSIX-only ones in
// file_lock_posix_test.cpp, the Windows-only ones in tests/windows/file_lock_windows_test.cpp.
#ifndef TORCH_TENSORRT_RTX_TESTS_CORE_UTIL_FILE_LOCK_TEST_SUPPORT_H_
#define TORCH_TENSORRT_RTX_TESTS_CORE_UTIL_FILE_LOCK_TEST_SUPPORT_H_

#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>

#include "core/util/file_lock.h"
#include "gtest/gtest.h"
#include "tests/core/util/test_dir.h"

namespace torch_tensorrt_rtx {
namespace util {

constexpr int kExitTimedOut = 3;

class FileLockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTestDir("file_lock_test");
    lock_path_ = LockPathFor(dir_ + "/runtime.cache");
  }

  // Whether a fresh FileLock in `mode` can get the lock right now.
  bool CanLock(LockMode mode) {
    FileLock probe(lock_path_, mode);
    return probe.try_lock();
  }

  std::string dir_;
  std::string lock_path_;
};

inline const char* ModeName(LockMode mode) {
  return mode == LockMode::kShared ? "shared" : "exclusive";
}

// Runs a child mode if argv asks for one and stores its exit code; false otherwise.
inline bool RunChildMode(int argc, char** argv, int* exit_code) {
  if (argc < 4) {
    return false;
  }
  const std::string command = argv[1];
  if (command != "--hold-lock" && command != "--try-lock") {
    return false;
  }
  const LockMode mode = std::string(argv[3]) == "shared" ? LockMode::kShared : LockMode::kExclusive;
  FileLock lock(argv[2], mode);
  if (command == "--hold-lock") {
    lock.lock();
    std::cout << "locked" << std::endl;
    std::string ignored;
    while (std::getline(std::cin, ignored)) {
    }
    *exit_code = 0;
    return true;
  }
  if (argc < 5) {
    return false;
  }
  *exit_code = lock.try_lock_for(std::chrono::milliseconds(std::stoi(argv[4]))) ? 0 : kExitTimedOut;
  return true;
}

}  // namespace util
}  // namespace torch_tensorrt_rtx

#endif  // TORCH_TENSORRT_RTX_TESTS_CORE_UTIL_FILE_LOCK_TEST_SUPPORT_H_
