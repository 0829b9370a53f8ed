// The runtime cache file store on real files with the real FileLock, and a Python
// filelock holder in a child process.
#include "core/runtime/runtime_cache_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <new>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

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

class RuntimeCacheFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTestDir("cache_file_test");
    path_ = dir_ + "/runtime_cache.bin";
  }
  static std::string Read(const std::string& p) { return testing::ReadFile(p); }
  static void Write(const std::string& p, const std::string& data) { testing::WriteFile(p, data); }
  static bool Exists(const std::string& p) {
    struct stat info;
    return lstat(p.c_str(), &info) == 0;
  }
  int CountEntries() const {
    int n = 0;
    std::string cmd = "ls -A " + dir_ + " | wc -l";
    FILE* f = popen(cmd.c_str(), "r");
    if (f != nullptr) {
      if (fscanf(f, "%d", &n) != 1) n = -1;
      pclose(f);
    }
    return n;
  }
  std::string dir_, path_;
};

TEST_F(RuntimeCacheFileTest, MissingFileLoadsNothingAndCreatesNoLockFile) {
  RuntimeCacheFile store(path_);
  bool called = false;
  EXPECT_FALSE(store.TryLoad([&](const void*, size_t) { return called = true; }));
  EXPECT_FALSE(called);
  EXPECT_FALSE(Exists(store.lock_path()));
}

TEST_F(RuntimeCacheFileTest, SaveThenLoadRoundTripsBytesExactly) {
  RuntimeCacheFile store(path_);
  std::string blob("a\0b\xff payload", 12);
  ASSERT_TRUE(store.TrySave([&] { return blob; }));
  EXPECT_EQ(Read(path_), blob);
  EXPECT_TRUE(Exists(path_ + ".lock"));
  std::string seen;
  EXPECT_TRUE(store.TryLoad([&](const void* p, size_t n) {
    seen.assign(static_cast<const char*>(p), n);
    return true;
  }));
  EXPECT_EQ(seen, blob);
  // No temp files left behind: the cache and its lock file only.
  EXPECT_EQ(CountEntries(), 2);
}

TEST_F(RuntimeCacheFileTest, SaveRemovesTempFilesOfKilledWriters) {
  Write(path_ + ".abc123.tmp", "half written");
  Write(dir_ + "/other.bin.abc123.tmp", "not ours");
  RuntimeCacheFile store(path_);
  ASSERT_TRUE(store.TrySaveBytes("x", 1));
  EXPECT_FALSE(Exists(path_ + ".abc123.tmp"));
  EXPECT_TRUE(Exists(dir_ + "/other.bin.abc123.tmp"));
}

TEST_F(RuntimeCacheFileTest, SaveSparesTempFilesOfOtherCaches) {
  // "runtime_cache.bin.gpu1" is another cache guarded by its own lock: its in-flight temp
  // file is not a stale temp file of ours (the Python runtime spares it too).
  Write(path_ + ".gpu1.abc123.tmp", "theirs");
  Write(path_ + "..tmp", "never a temp name");
  RuntimeCacheFile store(path_);
  ASSERT_TRUE(store.TrySaveBytes("x", 1));
  EXPECT_TRUE(Exists(path_ + ".gpu1.abc123.tmp"));
  EXPECT_TRUE(Exists(path_ + "..tmp"));
}

TEST_F(RuntimeCacheFileTest, LockFileModeFollowsTheUmaskLikePythonFilelock) {
  // py-filelock creates the lock file with 0666 & ~umask; so must we, or a group-shared
  // cache directory works or not depending on which runtime created the lock file first.
  const mode_t old = umask(002);
  RuntimeCacheFile store(path_);
  const bool saved = store.TrySaveBytes("x", 1);
  umask(old);
  ASSERT_TRUE(saved);
  struct stat info;
  ASSERT_EQ(stat(store.lock_path().c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 07777, 0664u);
  ASSERT_EQ(stat(path_.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 07777, 0600u);  // mkstemp's mode, as in Python
}

TEST_F(RuntimeCacheFileTest, PathIsNormalizedLexicallyLikePythonAbspath) {
  // os.path.abspath drops ".", ".." and empty components without looking at the disk, so
  // the Python runtime saves "<dir>/missing/../runtime_cache.bin" as <dir>/runtime_cache.bin
  // and never creates <dir>/missing.
  RuntimeCacheFile store(dir_ + "/missing/..//./runtime_cache.bin");
  EXPECT_EQ(store.path(), path_);
  EXPECT_EQ(store.lock_path(), path_ + ".lock");
  ASSERT_TRUE(store.TrySaveBytes("x", 1));
  EXPECT_EQ(Read(path_), "x");
  EXPECT_FALSE(Exists(dir_ + "/missing"));
  const std::string cwd_before = [] {
    char buf[4096];
    return std::string(getcwd(buf, sizeof(buf)));
  }();
  ASSERT_EQ(chdir(dir_.c_str()), 0);
  RuntimeCacheFile relative("cache.bin");
  RuntimeCacheFile dotted("./sub/../cache.bin/");
  ASSERT_EQ(chdir(cwd_before.c_str()), 0);
  EXPECT_EQ(relative.path(), dir_ + "/cache.bin");
  EXPECT_EQ(dotted.path(), dir_ + "/cache.bin");
}

TEST_F(RuntimeCacheFileTest, TempFileIsNotInheritedByChildProcesses) {
  // The Python runtime's temp file descriptor is close-on-exec (PEP 446); a program that
  // runs a child while another thread saves must not leak the temp file into it.
  RuntimeCacheFile store(path_);
  const std::string blob(std::size_t{32} << 20, 'x');
  std::atomic<bool> stop{false};
  std::thread saver([&] {
    while (!stop) store.TrySaveBytes(blob.data(), blob.size());
  });
  bool leaked = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (!leaked && std::chrono::steady_clock::now() < deadline) {
    FILE* f = popen("ls -l /proc/self/fd/ 2>/dev/null", "r");
    ASSERT_NE(f, nullptr);
    char line[4096];
    while (fgets(line, sizeof(line), f) != nullptr) {
      if (std::string(line).find(".tmp") != std::string::npos) leaked = true;
    }
    pclose(f);
  }
  stop = true;
  saver.join();
  EXPECT_FALSE(leaked) << "a child process inherited the temp file's descriptor";
}

TEST_F(RuntimeCacheFileTest, CreatesMissingParentDirectories) {
  RuntimeCacheFile store(dir_ + "/a/b/cache.bin");
  ASSERT_TRUE(store.TrySaveBytes("x", 1));
  EXPECT_EQ(Read(dir_ + "/a/b/cache.bin"), "x");
}

TEST_F(RuntimeCacheFileTest, EmptyOrFailedSerializationIsNeverWritten) {
  Write(path_, "old");
  RuntimeCacheFile store(path_);
  EXPECT_FALSE(store.TrySave([] { return std::string(); }));
  EXPECT_FALSE(store.TrySave([]() -> std::string { throw std::runtime_error("boom"); }));
  EXPECT_EQ(Read(path_), "old");
}

TEST_F(RuntimeCacheFileTest, RejectedBytesWarnAndReturnFalse) {
  Write(path_, "garbage");
  RuntimeCacheFile store(path_);
  ::testing::internal::CaptureStderr();
  EXPECT_FALSE(store.TryLoad([](const void*, size_t) { return false; }));
  EXPECT_FALSE(store.TryLoad([](const void*, size_t) -> bool { throw std::runtime_error("bad"); }));
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("cannot use " + path_), std::string::npos) << err;
  EXPECT_NE(err.find("bad"), std::string::npos) << err;
  EXPECT_EQ(Read(path_), "garbage");
}

TEST_F(RuntimeCacheFileTest, SymlinkAtCachePathIsRefused) {
  const std::string target = dir_ + "/target";
  Write(target, "target");
  ASSERT_EQ(symlink(target.c_str(), path_.c_str()), 0);
  RuntimeCacheFile store(path_);
  EXPECT_FALSE(store.TrySaveBytes("new", 3));
  EXPECT_FALSE(store.TryRead().has_value());
  EXPECT_EQ(Read(target), "target");
}

TEST_F(RuntimeCacheFileTest, PythonHolderMakesSaveTimeOutWithoutThrowingAndFileUnchanged) {
  Write(path_, "original");
  struct stat before;
  ASSERT_EQ(stat(path_.c_str(), &before), 0);
  ChildProcess holder({ProjectPython(), "-c", kPythonHolder, path_ + ".lock"});
  ASSERT_EQ(holder.ReadLine(), "locked");

  RuntimeCacheFile store(path_, milliseconds(300));
  ::testing::internal::CaptureStderr();
  const auto start = std::chrono::steady_clock::now();
  bool saved = true;
  EXPECT_NO_THROW(saved = store.TrySaveBytes("replacement", 11));
  const auto waited = std::chrono::steady_clock::now() - start;
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_FALSE(saved);
  EXPECT_GE(waited, milliseconds(300));
  EXPECT_NE(err.find("could not lock"), std::string::npos) << err;
  struct stat after;
  ASSERT_EQ(stat(path_.c_str(), &after), 0);
  EXPECT_EQ(Read(path_), "original");
  EXPECT_EQ(after.st_ino, before.st_ino);
  EXPECT_EQ(after.st_size, before.st_size);
  EXPECT_EQ(after.st_mtim.tv_sec, before.st_mtim.tv_sec);
  EXPECT_EQ(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
  // A timed-out load does not throw either and starts empty.
  EXPECT_FALSE(store.TryRead().has_value());

  holder.CloseStdin();
  EXPECT_EQ(holder.Wait(), 0);
  EXPECT_TRUE(store.TrySaveBytes("replacement", 11));
  EXPECT_EQ(Read(path_), "replacement");
}

TEST_F(RuntimeCacheFileTest, SharedReadersCoexistAndBlockSavers) {
  Write(path_, "data");
  util::FileLock reader(path_ + ".lock", util::LockMode::kShared);
  ASSERT_TRUE(reader.try_lock());
  RuntimeCacheFile store(path_, milliseconds(200));
  // A second shared reader (our own TryRead) gets in while the first holds the lock.
  EXPECT_EQ(store.TryRead().value_or(""), "data");
  // A saver does not.
  EXPECT_FALSE(store.TrySaveBytes("new", 3));
  EXPECT_EQ(Read(path_), "data");
  reader.unlock();
  EXPECT_TRUE(store.TrySaveBytes("new", 3));
}

TEST_F(RuntimeCacheFileTest, ConcurrentSaversAndReadersAlwaysSeeCompleteFiles) {
  RuntimeCacheFile store(path_);
  const std::string a(100000, 'a'), b(200000, 'b');
  ASSERT_TRUE(store.TrySaveBytes(a.data(), a.size()));
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::thread reader([&] {
    while (!stop) {
      std::string got = store.TryRead().value_or("");
      if (got != a && got != b) ++bad;
    }
  });
  for (int i = 0; i < 50; ++i) {
    const std::string& blob = i % 2 ? a : b;
    ASSERT_TRUE(store.TrySaveBytes(blob.data(), blob.size()));
  }
  stop = true;
  reader.join();
  EXPECT_EQ(bad, 0);
}

// A ReadBuffer that can change the file between the store's fstat and its first read.
class ChangingBuffer final : public ReadBuffer {
 public:
  explicit ChangingBuffer(std::function<void()> on_first_reserve)
      : on_first_reserve_(std::move(on_first_reserve)) {}
  char* Reserve(std::size_t capacity, std::size_t keep) override {
    EXPECT_LE(keep, bytes.size());
    if (calls++ == 0 && on_first_reserve_) on_first_reserve_();
    bytes.resize(capacity);
    return bytes.data();
  }
  std::string Contents(std::size_t size) const { return std::string(bytes.data(), size); }

  std::vector<char> bytes;
  int calls = 0;

 private:
  std::function<void()> on_first_reserve_;
};

TEST_F(RuntimeCacheFileTest, EmptyFileReadsAsEmptyNotMissing) {
  Write(path_, "");
  RuntimeCacheFile store(path_);
  EXPECT_EQ(store.TryRead(), std::optional<std::string>(""));
  bool called = false;
  EXPECT_TRUE(store.TryLoad([&](const void*, size_t n) { return called = n == 0; }));
  EXPECT_TRUE(called);
}

TEST_F(RuntimeCacheFileTest, LargeFileRoundTripsByteForByteThroughEveryReader) {
  std::string blob(24 << 20, '\0');
  for (std::size_t i = 0; i < blob.size(); ++i) blob[i] = static_cast<char>((i * 131) >> 7);
  RuntimeCacheFile store(path_);
  ASSERT_TRUE(store.TrySaveBytes(blob.data(), blob.size()));
  EXPECT_TRUE(store.TryRead() == blob);
  EXPECT_TRUE(store.TryLoad([&](const void* p, size_t n) {
    return n == blob.size() && std::string(static_cast<const char*>(p), n) == blob;
  }));
  ChangingBuffer buffer(nullptr);
  const std::optional<std::size_t> size = store.TryReadInto(buffer);
  ASSERT_TRUE(size.has_value());
  EXPECT_TRUE(buffer.Contents(*size) == blob);
  EXPECT_EQ(buffer.calls, 1);  // sized from fstat: no growth for an unchanged file
}

TEST_F(RuntimeCacheFileTest, FileThatGrowsAfterFstatIsReadToTheEnd) {
  Write(path_, "abc");
  const std::string more(300000, 'x');
  ChangingBuffer buffer([&] { std::ofstream(path_, std::ios::binary | std::ios::app) << more; });
  const std::optional<std::size_t> size = RuntimeCacheFile(path_).TryReadInto(buffer);
  ASSERT_TRUE(size.has_value());
  EXPECT_TRUE(buffer.Contents(*size) == "abc" + more);
  EXPECT_GT(buffer.calls, 1);
}

TEST_F(RuntimeCacheFileTest, FileThatShrinksAfterFstatGivesWhatIsLeft) {
  Write(path_, std::string(100000, 'y'));
  ChangingBuffer buffer([&] { ASSERT_EQ(truncate(path_.c_str(), 10), 0); });
  const std::optional<std::size_t> size = RuntimeCacheFile(path_).TryReadInto(buffer);
  ASSERT_TRUE(size.has_value());
  EXPECT_EQ(buffer.Contents(*size), std::string(10, 'y'));
}

TEST_F(RuntimeCacheFileTest, BufferThatCannotGrowFailsWithoutThrowing) {
  Write(path_, "data");
  ChangingBuffer for_read([] { throw std::bad_alloc(); });
  EXPECT_FALSE(RuntimeCacheFile(path_).TryReadInto(for_read).has_value());
  ChangingBuffer for_load([] { throw std::bad_alloc(); });
  EXPECT_FALSE(RuntimeCacheFile(path_).TryLoad(for_load, [](const void*, size_t) { return true; }));
}

}  // namespace
}  // namespace runtime
}  // namespace torch_tensorrt_rtx
