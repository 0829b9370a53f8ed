// FileLock cases that hold on every platform: built by Bazel on Linux and by
// scripts/windows_test.sh for Windows (run under wine). POSIX-only cases are in
// file_lock_posix_test.cpp, Windows-only ones in tests/windows/file_lock_windows_test.cpp.
#include "core/util/file_lock.h"

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/core/util/child_process.h"
#include "tests/core/util/file_lock_test_support.h"
#include "tests/core/util/test_dir.h"

namespace torch_tensorrt_rtx {
namespace util {
namespace {

using std::chrono::milliseconds;
using testing::ChildProcess;

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
    EXPECT_TRUE(testing::FileExists(lock_path_));
  }
  EXPECT_TRUE(testing::FileExists(lock_path_));
}

TEST_F(FileLockTest, OpenFailureThrowsWithPath) {
  const std::string bad = dir_ + "/no/such/dir/cache.lock";
  try {
    FileLock lock(bad);
    FAIL() << "expected FileLockError";
  } catch (const FileLockError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find(bad), std::string::npos) << message;
#ifdef _WIN32
    EXPECT_NE(message.find("Windows error 3)"), std::string::npos) << message;  // ERROR_PATH_NOT_FOUND
#else
    EXPECT_NE(message.find("No such file"), std::string::npos) << message;
#endif
  }
}

TEST_F(FileLockTest, ThreadsIncrementCounterExactly) {
  const std::string counter_path = dir_ + "/counter";
  testing::WriteFile(counter_path, "0");
  constexpr int kThreads = 8;
#ifdef _WIN32
  // Under wine each locked read-modify-write costs milliseconds, and a thread that
  // re-locks at once can keep the others polling: fewer rounds keep them far from the
  // 10 s timeout on a loaded machine.
  constexpr int kIncrements = 50;
#else
  constexpr int kIncrements = 200;
#endif
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
        const int value = std::stoi(testing::ReadFile(counter_path));
        testing::WriteFile(counter_path, std::to_string(value + 1));
        lock.unlock();
      }
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  const int total = std::stoi(testing::ReadFile(counter_path));
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(total, kThreads * kIncrements);
}

// Two processes of this test program: while one holds the lock, the other times out
// (after at least its timeout), in both modes; once the holder is gone it gets the lock.
TEST_F(FileLockTest, SecondProcessTimesOutWhileFirstHolds) {
  const std::string self = testing::SelfExecutable();
  ChildProcess holder({self, "--hold-lock", lock_path_, "exclusive"});
  ASSERT_EQ(holder.ReadLine(), "locked");
  for (LockMode mode : {LockMode::kShared, LockMode::kExclusive}) {
    const auto start = std::chrono::steady_clock::now();
    ChildProcess waiter({self, "--try-lock", lock_path_, ModeName(mode), "300"});
    EXPECT_EQ(waiter.Wait(), kExitTimedOut) << "a second process got a held lock in mode " << ModeName(mode);
    EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(300));
  }
  EXPECT_FALSE(CanLock(LockMode::kShared));
  holder.CloseStdin();
  EXPECT_EQ(holder.Wait(), 0);
  ChildProcess free({self, "--try-lock", lock_path_, "exclusive", "5000"});
  EXPECT_EQ(free.Wait(), 0);
}

TEST_F(FileLockTest, SharedHoldersInTwoProcessesCoexistAndExcludeWriters) {
  const std::string self = testing::SelfExecutable();
  ChildProcess reader({self, "--hold-lock", lock_path_, "shared"});
  ASSERT_EQ(reader.ReadLine(), "locked");
  ChildProcess second_reader({self, "--try-lock", lock_path_, "shared", "0"});
  EXPECT_EQ(second_reader.Wait(), 0);
  ChildProcess writer({self, "--try-lock", lock_path_, "exclusive", "200"});
  EXPECT_EQ(writer.Wait(), kExitTimedOut);
  reader.CloseStdin();
  EXPECT_EQ(reader.Wait(), 0);
}

}  // namespace
}  // namespace util
}  // namespace torch_tensorrt_rtx

// The test program doubles as the child process of the two-process cases.
int main(int argc, char** argv) {
  int exit_code = 0;
  if (torch_tensorrt_rtx::util::RunChildMode(argc, argv, &exit_code)) {
    return exit_code;
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
