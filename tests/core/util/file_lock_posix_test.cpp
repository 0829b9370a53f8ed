// FileLock cases that need POSIX: flock(2) interop with raw descriptors and with Python's
// filelock, symlinks, and a peer that unlinks the lock file. Linked into file_lock_test.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "core/util/file_lock.h"
#include "gtest/gtest.h"
#include "tests/core/util/child_process.h"
#include "tests/core/util/file_lock_test_support.h"

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

bool ExistsNoFollow(const std::string& path) {
  struct stat info;
  return lstat(path.c_str(), &info) == 0;
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
  EXPECT_FALSE(ExistsNoFollow(target));
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

}  // namespace
}  // namespace util
}  // namespace torch_tensorrt_rtx
