// RuntimeCacheFile cases that need POSIX: a Python filelock holder (py-filelock and our
// FileLock exclude each other), the files' modes, and descriptors not leaking into children.
// The portable cases and main() are in runtime_cache_file_test.cpp.
#ifndef _WIN32

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "core/runtime/runtime_cache_file.h"
#include "gtest/gtest.h"
#include "tests/core/runtime/runtime_cache_file_test_support.h"
#include "tests/core/util/child_process.h"

namespace torch_tensorrt_rtx {
namespace runtime {
namespace {

using std::chrono::milliseconds;
using testing::ChildProcess;
using testing::kPythonHolder;
using testing::ProjectPython;

TEST_F(RuntimeCacheFileTest, LockFileModeFollowsTheUmaskLikePythonFilelock) {
  // py-filelock creates the lock file with 0666 & ~umask; so must we, or a group-shared
  // cache directory works or not depending on which runtime created the lock file first.
  const mode_t old = umask(002);
  RuntimeCacheFile store(path_);
  const bool saved = store.TrySaveEntry(kA, "x", 1);
  umask(old);
  ASSERT_TRUE(saved);
  struct stat info;
  ASSERT_EQ(stat(store.lock_path().c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 07777, 0664u);
  ASSERT_EQ(stat(path_.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 07777, 0600u);  // mkstemp's mode, as in Python
}

TEST_F(RuntimeCacheFileTest, TempFileIsNotInheritedByChildProcesses) {
  RuntimeCacheFile store(path_);
  const std::string blob(std::size_t{32} << 20, 'x');
  std::atomic<bool> stop{false};
  std::thread saver([&] {
    while (!stop) store.TrySaveEntry(kA, blob.data(), blob.size());
  });
  bool leaked = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (!leaked && std::chrono::steady_clock::now() < deadline) {
    FILE* f = popen("ls -l /proc/self/fd/ 2>/dev/null", "r");
    ASSERT_NE(f, nullptr);
    char line[4096];
    while (fgets(line, sizeof(line), f) != nullptr) {
      if (std::string(line).find(".trtx-tmp-") != std::string::npos) leaked = true;
    }
    pclose(f);
  }
  stop = true;
  saver.join();
  EXPECT_FALSE(leaked) << "a child process inherited the temp file's descriptor";
}

TEST_F(RuntimeCacheFileTest, PythonHolderMakesSaveTimeOutWithoutThrowingAndFileUnchanged) {
  RuntimeCacheFile store(path_, milliseconds(300));
  ASSERT_TRUE(store.TrySaveEntry(kA, "original", 8));
  struct stat before;
  ASSERT_EQ(stat(path_.c_str(), &before), 0);
  ChildProcess holder({ProjectPython(), "-c", kPythonHolder, path_ + ".lock"});
  ASSERT_EQ(holder.ReadLine(), "locked");

  ::testing::internal::CaptureStderr();
  bool saved = true;
  EXPECT_NO_THROW(saved = store.TrySaveEntry(kA, "replacement", 11));
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_FALSE(saved);
  EXPECT_NE(err.find("could not lock"), std::string::npos) << err;
  struct stat after;
  ASSERT_EQ(stat(path_.c_str(), &after), 0);
  EXPECT_EQ(after.st_ino, before.st_ino);
  EXPECT_EQ(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
  // A timed-out load (the Python lock is exclusive) does not throw either.
  EXPECT_FALSE(store.TryLoadEntry(kA).has_value());

  holder.CloseStdin();
  EXPECT_EQ(holder.Wait(), 0);
  EXPECT_TRUE(store.TrySaveEntry(kA, "replacement", 11));
  EXPECT_EQ(Entry(store, kA), "replacement");
}

}  // namespace
}  // namespace runtime
}  // namespace torch_tensorrt_rtx

#endif  // _WIN32
