#include "core/util/file_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/core/util/child_process.h"
#include "tests/core/util/test_dir.h"

namespace torch_tensorrt_rtx {
namespace util {
namespace {

using std::chrono::milliseconds;
using testing::ChildProcess;
using testing::kPythonHolder;
using testing::ProjectPython;


// Tries filelock.FileLock(argv[1]).acquire(timeout=argv[2]): exit 0 if acquired, 3 on timeout.
constexpr const char* kPythonTryAcquire = R"(
import sys, filelock
try:
    filelock.FileLock(sys.argv[1]).acquire(timeout=float(sys.argv[2]))
except filelock.Timeout:
    sys.exit(3)
)";

class FileLockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTestDir("file_lock_test");
    lock_path_ = LockPathFor(dir_ + "/runtime.cache");
  }

  static bool Exists(const std::string& path) {
    struct stat info;
    return lstat(path.c_str(), &info) == 0;
  }

  // Whether a fresh FileLock in `mode` can get the lock right now.
  bool CanLock(LockMode mode) {
    FileLock probe(lock_path_, mode);
    return probe.try_lock();
  }

  std::string dir_;
  std::string lock_path_;
};

TEST_F(FileLockTest, LockPathAppendsSuffix) {
  EXPECT_EQ(LockPathFor("/a/b/cache.bin"), "/a/b/cache.bin.lock");
}

TEST_F(FileLockTest, ExclusiveBlocksExclusive) {
  FileLock holder(lock_path_, LockMode::kExclusive);
  ASSERT_TRUE(holder.try_lock());
  EXPECT_TRUE(holder.owns_lock());
  EXPECT_FALSE(CanLock(LockMode::kExclusive));
}

TEST_F(FileLockTest, SharedAllowsShared) {
  FileLock first(lock_path_, LockMode::kShared);
  FileLock second(lock_path_, LockMode::kShared);
  ASSERT_TRUE(first.try_lock());
  EXPECT_TRUE(second.try_lock());
}

TEST_F(FileLockTest, SharedBlocksExclusive) {
  FileLock reader(lock_path_, LockMode::kShared);
  ASSERT_TRUE(reader.try_lock());
  EXPECT_FALSE(CanLock(LockMode::kExclusive));
}

TEST_F(FileLockTest, ExclusiveBlocksShared) {
  FileLock writer(lock_path_, LockMode::kExclusive);
  ASSERT_TRUE(writer.try_lock());
  EXPECT_FALSE(CanLock(LockMode::kShared));
}

TEST_F(FileLockTest, TryLockForTimesOutWithinBounds) {
  FileLock holder(lock_path_);
  holder.lock();
  FileLock waiter(lock_path_);
  const auto timeout = milliseconds(300);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(waiter.try_lock_for(timeout));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_GE(elapsed, timeout);
  EXPECT_LE(elapsed, timeout + milliseconds(1000));
  EXPECT_FALSE(waiter.owns_lock());
}

TEST_F(FileLockTest, TryLockForSucceedsAfterRelease) {
  FileLock holder(lock_path_);
  holder.lock();
  std::thread releaser([&holder] {
    std::this_thread::sleep_for(milliseconds(200));
    holder.unlock();
  });
  FileLock waiter(lock_path_);
  EXPECT_TRUE(waiter.try_lock_for(milliseconds(5000)));
  releaser.join();
  EXPECT_TRUE(waiter.owns_lock());
}

TEST_F(FileLockTest, ZeroTimeoutStillAttemptsOnce) {
  FileLock lock(lock_path_);
  EXPECT_TRUE(lock.try_lock_for(milliseconds(0)));
}

TEST_F(FileLockTest, MoveTransfersOwnership) {
  FileLock original(lock_path_);
  original.lock();
  FileLock moved(std::move(original));
  EXPECT_FALSE(original.owns_lock());
  EXPECT_TRUE(moved.owns_lock());
  EXPECT_FALSE(CanLock(LockMode::kExclusive));
  FileLock assigned(LockPathFor(dir_ + "/other.cache"));
  assigned = std::move(moved);
  EXPECT_TRUE(assigned.owns_lock());
  EXPECT_FALSE(CanLock(LockMode::kExclusive));
  assigned.unlock();
  EXPECT_TRUE(CanLock(LockMode::kExclusive));
}

TEST_F(FileLockTest, MovedFromLockRefusesToLock) {
  FileLock original(lock_path_);
  FileLock moved(std::move(original));
  EXPECT_THROW(original.try_lock(), FileLockError);
}

TEST_F(FileLockTest, DestructorReleases) {
  {
    FileLock scoped(lock_path_);
    scoped.lock();
    EXPECT_FALSE(CanLock(LockMode::kExclusive));
  }
  EXPECT_TRUE(CanLock(LockMode::kExclusive));
}

TEST_F(FileLockTest, LockFileNotUnlinkedOnRelease) {
  {
    FileLock lock(lock_path_);
    lock.lock();
    lock.unlock();
    EXPECT_TRUE(Exists(lock_path_));
  }
  EXPECT_TRUE(Exists(lock_path_));
}

TEST_F(FileLockTest, OpenFailureThrowsWithPath) {
  const std::string bad = dir_ + "/no/such/dir/cache.lock";
  try {
    FileLock lock(bad);
    FAIL() << "expected FileLockError";
  } catch (const FileLockError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find(bad), std::string::npos) << message;
    EXPECT_NE(message.find("No such file"), std::string::npos) << message;
  }
}

TEST_F(FileLockTest, SymlinkAtLockPathRefused) {
  const std::string target = dir_ + "/elsewhere";
  ASSERT_EQ(symlink(target.c_str(), lock_path_.c_str()), 0);
  try {
    FileLock lock(lock_path_);
    FAIL() << "expected FileLockError";
  } catch (const FileLockError& error) {
    EXPECT_NE(std::string(error.what()).find("symlink"), std::string::npos) << error.what();
  }
  EXPECT_FALSE(Exists(target));
}

TEST_F(FileLockTest, RawFlockFromAnotherDescriptorBlocksBothModes) {
  const int fd = open(lock_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(flock(fd, LOCK_EX), 0);
  EXPECT_FALSE(CanLock(LockMode::kShared));
  EXPECT_FALSE(CanLock(LockMode::kExclusive));
  flock(fd, LOCK_UN);
  close(fd);
  EXPECT_TRUE(CanLock(LockMode::kExclusive));
}

TEST_F(FileLockTest, PythonFileLockHolderBlocksCpp) {
  ChildProcess child({ProjectPython(), "-c", kPythonHolder, lock_path_});
  ASSERT_EQ(child.ReadLine(), "locked");
  FileLock lock(lock_path_, LockMode::kShared);
  EXPECT_FALSE(lock.try_lock_for(milliseconds(200)));
  FileLock exclusive(lock_path_, LockMode::kExclusive);
  EXPECT_FALSE(exclusive.try_lock());
  child.CloseStdin();
  EXPECT_EQ(child.Wait(), 0);
  EXPECT_TRUE(exclusive.try_lock_for(milliseconds(2000)));
}

TEST_F(FileLockTest, CppHolderBlocksPythonFileLock) {
  for (LockMode mode : {LockMode::kExclusive, LockMode::kShared}) {
    FileLock holder(lock_path_, mode);
    ASSERT_TRUE(holder.try_lock());
    ChildProcess blocked({ProjectPython(), "-c", kPythonTryAcquire, lock_path_, "0.3"});
    EXPECT_EQ(blocked.Wait(), 3) << "python acquired a lock held by C++ in mode " << static_cast<int>(mode);
    holder.unlock();
    ChildProcess free({ProjectPython(), "-c", kPythonTryAcquire, lock_path_, "5"});
    EXPECT_EQ(free.Wait(), 0);
  }
}

TEST_F(FileLockTest, PeerThatUnlinksAndRecreatesDoesNotGiveTwoHolders) {
  // Old filelock releases unlinked the lock file. Our lock opened the original file...
  FileLock late(lock_path_);
  const int old_fd = open(lock_path_.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(old_fd, 0);
  ASSERT_EQ(flock(old_fd, LOCK_EX), 0);
  // ...then the old holder unlinked it, and a newcomer created and locked a new one...
  ASSERT_EQ(unlink(lock_path_.c_str()), 0);
  const int new_fd = open(lock_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(new_fd, 0);
  ASSERT_EQ(flock(new_fd, LOCK_EX), 0);
  flock(old_fd, LOCK_UN);
  close(old_fd);
  // ...so the unlinked file is free, yet taking it must not count: the newcomer holds the path.
  EXPECT_FALSE(late.try_lock_for(milliseconds(200)));
  flock(new_fd, LOCK_UN);
  EXPECT_TRUE(late.try_lock());
  close(new_fd);
}

TEST_F(FileLockTest, ThreadsIncrementCounterExactly) {
  const std::string counter_path = dir_ + "/counter";
  std::ofstream(counter_path) << 0;
  constexpr int kThreads = 8;
  constexpr int kIncrements = 200;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      FileLock lock(lock_path_);
      for (int i = 0; i < kIncrements; ++i) {
        if (!lock.try_lock_for()) {
          ++failures;
          continue;
        }
        int value = 0;
        std::ifstream(counter_path) >> value;
        std::ofstream(counter_path, std::ios::trunc) << value + 1;
        lock.unlock();
      }
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  int total = 0;
  std::ifstream(counter_path) >> total;
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(total, kThreads * kIncrements);
}

}  // namespace
}  // namespace util
}  // namespace torch_tensorrt_rtx
