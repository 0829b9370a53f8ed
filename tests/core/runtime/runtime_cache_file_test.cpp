// RuntimeCacheFile cases that hold on every platform, on real files with the real FileLock,
// threads and second processes of this program: built by Bazel on Linux and by
// scripts/windows_test.sh for Windows (run under wine). POSIX-only cases (a Python filelock
// holder, file modes, descriptor inheritance) are in runtime_cache_file_posix_test.cpp,
// Windows-only ones in tests/windows/runtime_cache_file_windows_test.cpp. The behaviour both
// runtimes share (container bytes, eviction, hostile files) is tested once for both in
// tests/py/cross_runtime.
#include "core/runtime/runtime_cache_file.h"

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/util/file_lock.h"
#include "gtest/gtest.h"
#include "tests/core/runtime/runtime_cache_file_test_support.h"
#include "tests/core/util/child_process.h"
#include "tests/core/util/test_dir.h"

namespace torch_tensorrt_rtx {
namespace runtime {
namespace {

using std::chrono::milliseconds;
using testing::ChildProcess;

TEST_F(RuntimeCacheFileTest, MissingFileLoadsNothingAndCreatesNoLockFile) {
  RuntimeCacheFile store(path_);
  bool called = false;
  EXPECT_FALSE(store.TryLoad(kA, [&](const void*, size_t) { return called = true; }));
  EXPECT_FALSE(called);
  EXPECT_FALSE(testing::FileExists(store.lock_path()));
}

TEST_F(RuntimeCacheFileTest, EntriesOfTwoEnginesSurviveEachOthersSaves) {
  RuntimeCacheFile store(path_);
  ASSERT_TRUE(store.TrySaveEntry(kA, "aaa", 3, 100));
  ASSERT_TRUE(store.TrySaveEntry(kB, "bbbb", 4, 200));
  ASSERT_TRUE(store.TrySaveEntry(kA, "AAAAA", 5, 300));
  EXPECT_EQ(Entry(store, kA), "AAAAA");
  EXPECT_EQ(Entry(store, kB), "bbbb");
  const auto index = store.TryReadIndex();
  ASSERT_TRUE(index.has_value());
  ASSERT_EQ(index->size(), 2u);
  EXPECT_EQ((*index)[0].key, kB);  // kept entries first, in file order; the saved one last
  EXPECT_EQ((*index)[1].last_use, 300u);
}

TEST_F(RuntimeCacheFileTest, EmbeddedNulInThePathIsAClearError) {
  EXPECT_THROW(RuntimeCacheFile(dir_ + std::string("/a\0b", 4)), std::invalid_argument);
  EXPECT_THROW(RuntimeCacheFile(""), std::invalid_argument);
}

TEST_F(RuntimeCacheFileTest, PathIsNormalizedLexicallyLikePythonAbspath) {
  // Forward slashes on both platforms: Windows normalizes them to backslashes, like ntpath.
  RuntimeCacheFile store(dir_ + "/missing/..//./runtime_cache.bin");
  EXPECT_EQ(store.path(), path_);
  EXPECT_EQ(store.lock_path(), path_ + ".lock");
  ASSERT_TRUE(store.TrySaveEntry(kA, "x", 1));
  EXPECT_EQ(Entry(RuntimeCacheFile(path_), kA), "x");
  EXPECT_FALSE(testing::FileExists(dir_ + testing::kSep + "missing"));
}

TEST_F(RuntimeCacheFileTest, RejectedBytesWarnAndLoadNothing) {
  RuntimeCacheFile store(path_);
  ASSERT_TRUE(store.TrySaveEntry(kA, "garbage", 7));
  ::testing::internal::CaptureStderr();
  EXPECT_FALSE(store.TryLoad(kA, [](const void*, size_t) { return false; }));
  EXPECT_FALSE(store.TryLoad(kA, [](const void*, size_t) -> bool { throw std::runtime_error("bad"); }));
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("cannot use the entry"), std::string::npos) << err;
  EXPECT_NE(err.find("bad"), std::string::npos) << err;
  EXPECT_EQ(Entry(store, kA), "garbage");
}

TEST_F(RuntimeCacheFileTest, HolderProcessMakesSaveTimeOutWithoutThrowingAndFileUnchanged) {
  RuntimeCacheFile store(path_, milliseconds(300));
  ASSERT_TRUE(store.TrySaveEntry(kA, "original", 8));
  const std::string before = testing::ReadFile(path_);
  // Another process holds the lock exclusively, as a saving runtime would.
  ChildProcess holder({testing::SelfExecutable(), "--hold-lock", store.lock_path(), "exclusive"});
  ASSERT_EQ(holder.ReadLine(), "locked");

  ::testing::internal::CaptureStderr();
  const auto start = std::chrono::steady_clock::now();
  bool saved = true;
  EXPECT_NO_THROW(saved = store.TrySaveEntry(kA, "replacement", 11));
  const auto waited = std::chrono::steady_clock::now() - start;
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_FALSE(saved);
  EXPECT_GE(waited, milliseconds(300));
  EXPECT_NE(err.find("could not lock"), std::string::npos) << err;
  EXPECT_EQ(testing::ReadFile(path_), before);
  EXPECT_FALSE(store.TryLoadEntry(kA).has_value());  // a timed-out load does not throw

  holder.CloseStdin();
  EXPECT_EQ(holder.Wait(), 0);
  EXPECT_TRUE(store.TrySaveEntry(kA, "replacement", 11));
  EXPECT_EQ(Entry(store, kA), "replacement");
}

TEST_F(RuntimeCacheFileTest, SharedReadersCoexistAndBlockSavers) {
  RuntimeCacheFile store(path_, milliseconds(200));
  ASSERT_TRUE(store.TrySaveEntry(kA, "data", 4));
  util::FileLock reader(path_ + ".lock", util::LockMode::kShared);
  ASSERT_TRUE(reader.try_lock());
  EXPECT_EQ(Entry(store, kA), "data");  // a second shared reader gets in
  EXPECT_FALSE(store.TrySaveEntry(kA, "new", 3));  // a saver does not
  reader.unlock();
  EXPECT_TRUE(store.TrySaveEntry(kA, "new", 3));
}

TEST_F(RuntimeCacheFileTest, ConcurrentSaverThreadsLoseNothing) {
  // Each thread has its own store, hence its own lock file handle (flock locks are per open
  // file description, LockFileEx locks per handle).
  constexpr int kThreads = 8;
  constexpr int kRounds = 10;
  std::vector<std::thread> threads;
  std::atomic<int> failed{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      RuntimeCacheFile store(path_);
      for (int r = 1; r <= kRounds; ++r) {
        const std::string blob = Blob(t, r);
        if (!store.TrySaveEntry(KeyOf(t), blob.data(), blob.size())) ++failed;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failed, 0);
  RuntimeCacheFile store(path_);
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(Entry(store, KeyOf(t)), Blob(t, kRounds));
}

TEST_F(RuntimeCacheFileTest, ConcurrentSaverProcessesLoseNothing) {
  // Real processes, each replacing the file (rename / MoveFileExW) under the lock many times.
  constexpr int kProcesses = 4;
  constexpr int kRounds = 10;
  std::vector<std::unique_ptr<ChildProcess>> savers;
  for (int t = 0; t < kProcesses; ++t) {
    savers.push_back(std::make_unique<ChildProcess>(std::vector<std::string>{
        testing::SelfExecutable(), "--save-entries", path_, std::to_string(t), std::to_string(kRounds)}));
  }
  for (auto& saver : savers) EXPECT_EQ(saver->Wait(), 0) << "a saver process failed a save";
  RuntimeCacheFile store(path_);
  for (int t = 0; t < kProcesses; ++t) EXPECT_EQ(Entry(store, KeyOf(t)), Blob(t, kRounds));
}

TEST_F(RuntimeCacheFileTest, ReadOnlyLockFileStillLoads) {
  RuntimeCacheFile store(path_);
  ASSERT_TRUE(store.TrySaveEntry(kA, "warm", 4));
  // A read-only lock file (a warm cache baked into an image): the shared lock falls back to
  // a read-only handle. Root (and wine run as root) can write anything, so only other users
  // take the read-only path; the load must succeed either way.
  ASSERT_TRUE(testing::SetReadOnly(store.lock_path(), true));
  EXPECT_EQ(Entry(store, kA), "warm");
  testing::SetReadOnly(store.lock_path(), false);
}

}  // namespace
}  // namespace runtime
}  // namespace torch_tensorrt_rtx

int main(int argc, char** argv) {
  int exit_code = 0;
  if (torch_tensorrt_rtx::runtime::RunStoreChildMode(argc, argv, &exit_code)) return exit_code;
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
