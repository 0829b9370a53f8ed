// The C++ runtime cache store on real files with the real FileLock, threads and a Python
// filelock holder in a child process. The behaviour both runtimes share (container bytes,
// eviction, hostile files) is tested once for both in tests/py/cross_runtime.
#include "core/runtime/runtime_cache_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "core/runtime/cache_container.h"
#include "core/util/file_lock.h"
#include "gtest/gtest.h"
#include "tests/core/util/child_process.h"
#include "tests/core/util/test_dir.h"

namespace torch_tensorrt_rtx {
namespace runtime {
namespace {

using std::chrono::milliseconds;
using testing::ChildProcess;
using testing::kPythonHolder;
using testing::ProjectPython;

const EngineKey kA = Sha256("engine A", 8);
const EngineKey kB = Sha256("engine B", 8);

class RuntimeCacheFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTestDir("cache_file_test");
    path_ = dir_ + "/runtime_cache.bin";
  }
  static bool Exists(const std::string& p) {
    struct stat info;
    return lstat(p.c_str(), &info) == 0;
  }
  static std::string Entry(const RuntimeCacheFile& store, const EngineKey& key) {
    std::optional<CachedEntry> entry = store.TryLoadEntry(key);
    return entry ? entry->data : "<none>";
  }
  std::string dir_, path_;
};

TEST_F(RuntimeCacheFileTest, MissingFileLoadsNothingAndCreatesNoLockFile) {
  RuntimeCacheFile store(path_);
  bool called = false;
  EXPECT_FALSE(store.TryLoad(kA, [&](const void*, size_t) { return called = true; }));
  EXPECT_FALSE(called);
  EXPECT_FALSE(Exists(store.lock_path()));
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
  EXPECT_THROW(RuntimeCacheFile(std::string("/tmp/a\0b", 8)), std::invalid_argument);
  EXPECT_THROW(RuntimeCacheFile(""), std::invalid_argument);
}

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

TEST_F(RuntimeCacheFileTest, PathIsNormalizedLexicallyLikePythonAbspath) {
  RuntimeCacheFile store(dir_ + "/missing/..//./runtime_cache.bin");
  EXPECT_EQ(store.path(), path_);
  EXPECT_EQ(store.lock_path(), path_ + ".lock");
  ASSERT_TRUE(store.TrySaveEntry(kA, "x", 1));
  EXPECT_EQ(Entry(RuntimeCacheFile(path_), kA), "x");
  EXPECT_FALSE(Exists(dir_ + "/missing"));
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

TEST_F(RuntimeCacheFileTest, PythonHolderMakesSaveTimeOutWithoutThrowingAndFileUnchanged) {
  RuntimeCacheFile store(path_, milliseconds(300));
  ASSERT_TRUE(store.TrySaveEntry(kA, "original", 8));
  struct stat before;
  ASSERT_EQ(stat(path_.c_str(), &before), 0);
  ChildProcess holder({ProjectPython(), "-c", kPythonHolder, path_ + ".lock"});
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

TEST_F(RuntimeCacheFileTest, ConcurrentSaversOfDifferentEnginesLoseNothing) {
  // Threads stand in for processes here (flock locks are per open file description).
  constexpr int kThreads = 8;
  constexpr int kRounds = 10;
  std::vector<std::thread> threads;
  std::atomic<int> failed{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string name = "engine " + std::to_string(t);
      const EngineKey key = Sha256(name.data(), name.size());
      RuntimeCacheFile store(path_);
      for (int r = 1; r <= kRounds; ++r) {
        const std::string blob(static_cast<std::size_t>(r * 1000 + t), static_cast<char>('a' + t));
        if (!store.TrySaveEntry(key, blob.data(), blob.size())) ++failed;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failed, 0);
  RuntimeCacheFile store(path_);
  for (int t = 0; t < kThreads; ++t) {
    const std::string name = "engine " + std::to_string(t);
    EXPECT_EQ(Entry(store, Sha256(name.data(), name.size())),
              std::string(static_cast<std::size_t>(kRounds * 1000 + t), static_cast<char>('a' + t)));
  }
}

TEST_F(RuntimeCacheFileTest, ReadOnlyLockFileStillLoads) {
  RuntimeCacheFile store(path_);
  ASSERT_TRUE(store.TrySaveEntry(kA, "warm", 4));
  // A read-only lock file (a warm cache baked into an image): a shared lock still works
  // for a reader that cannot open it for writing. Root can write anything, so only
  // non-root users see the read-only path; the load must succeed either way.
  ASSERT_EQ(chmod(store.lock_path().c_str(), 0444), 0);
  EXPECT_EQ(Entry(store, kA), "warm");
}

}  // namespace
}  // namespace runtime
}  // namespace torch_tensorrt_rtx
