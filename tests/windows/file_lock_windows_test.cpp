// FileLock cases that only exist on Windows, linked into the Windows build of
// file_lock_test by scripts/windows_test.sh and run under wine:
//  - interop with both of Python filelock's Windows primitives on byte (0, 1): LockFileEx
//    (new releases) and the C runtime's _locking, which msvcrt.locking calls (old ones);
//  - UTF-8 paths reaching the file system as the same wide names;
//  - sharing: the lock file stays openable, and deletable, while it is locked;
//  - a symlink at the lock path refused, its target never created;
//  - a peer that deletes or renames the lock file and creates a new one never makes two
//    holders.
#ifdef _WIN32

#define WIN32_LEAN_AND_MEAN
#include <windows.h>

#include <fcntl.h>
#include <io.h>
#include <share.h>
#include <sys/locking.h>
#include <sys/stat.h>

#include <chrono>
#include <memory>
#include <string>

#include "core/util/file_lock.h"
#include "gtest/gtest.h"
#include "tests/core/util/file_lock_test_support.h"
#include "tests/core/util/test_dir.h"

namespace torch_tensorrt_rtx {
namespace util {
namespace {

using std::chrono::milliseconds;
using testing::Wide;

// The open Python's filelock does on Windows: os.open(path, O_RDWR | O_CREAT | O_TRUNC),
// that is the C runtime's default sharing (read and write, not delete).
int OpenLikePython(const std::string& path) {
  int fd = -1;
  _wsopen_s(&fd, Wide(path).c_str(), _O_RDWR | _O_CREAT | _O_TRUNC | _O_BINARY, _SH_DENYNO, _S_IREAD | _S_IWRITE);
  return fd;
}

// A raw LockFileEx holder of byte (0, 1) on its own handle, as new filelock releases do.
class RawLockFileEx {
 public:
  explicit RawLockFileEx(const std::string& path)
      : handle_(CreateFileW(Wide(path).c_str(), GENERIC_READ | GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE,
                            nullptr, OPEN_ALWAYS, FILE_ATTRIBUTE_NORMAL, nullptr)) {}
  ~RawLockFileEx() {
    if (handle_ != INVALID_HANDLE_VALUE) CloseHandle(handle_);
  }
  bool valid() const { return handle_ != INVALID_HANDLE_VALUE; }
  bool TryLock(bool exclusive) {
    OVERLAPPED range = {};
    return LockFileEx(handle_, (exclusive ? LOCKFILE_EXCLUSIVE_LOCK : 0) | LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0,
                      &range);
  }
  void Unlock() {
    OVERLAPPED range = {};
    UnlockFileEx(handle_, 0, 1, 0, &range);
  }

 private:
  HANDLE handle_;
};

TEST_F(FileLockTest, RawLockFileExOnByteZeroBlocksBothModes) {
  RawLockFileEx peer(lock_path_);
  ASSERT_TRUE(peer.valid());
  ASSERT_TRUE(peer.TryLock(/*exclusive=*/true));
  EXPECT_FALSE(CanLock(LockMode::kShared));
  EXPECT_FALSE(CanLock(LockMode::kExclusive));
  peer.Unlock();
  EXPECT_TRUE(CanLock(LockMode::kExclusive));
}

TEST_F(FileLockTest, CppHolderBlocksRawLockFileEx) {
  for (LockMode mode : {LockMode::kExclusive, LockMode::kShared}) {
    FileLock holder(lock_path_, mode);
    ASSERT_TRUE(holder.try_lock());
    RawLockFileEx peer(lock_path_);
    ASSERT_TRUE(peer.valid());
    EXPECT_FALSE(peer.TryLock(/*exclusive=*/true)) << "LockFileEx got byte 0 held in mode " << ModeName(mode);
    holder.unlock();
    EXPECT_TRUE(peer.TryLock(/*exclusive=*/true));
    peer.Unlock();
  }
}

TEST_F(FileLockTest, MsvcrtLockingOnByteZeroBlocksBothModes) {
  const int fd = OpenLikePython(lock_path_);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(_locking(fd, _LK_NBLCK, 1), 0);  // msvcrt.locking(fd, LK_NBLCK, 1) at offset 0
  EXPECT_FALSE(CanLock(LockMode::kShared));
  EXPECT_FALSE(CanLock(LockMode::kExclusive));
  ASSERT_EQ(_locking(fd, _LK_UNLCK, 1), 0);
  EXPECT_TRUE(CanLock(LockMode::kExclusive));
  _close(fd);
}

TEST_F(FileLockTest, CppHolderBlocksMsvcrtLocking) {
  for (LockMode mode : {LockMode::kExclusive, LockMode::kShared}) {
    FileLock holder(lock_path_, mode);
    ASSERT_TRUE(holder.try_lock());
    // Python's open truncates the (empty) lock file: our sharing modes must allow it.
    const int fd = OpenLikePython(lock_path_);
    ASSERT_GE(fd, 0) << "the locked lock file could not be opened the way filelock opens it";
    EXPECT_NE(_locking(fd, _LK_NBLCK, 1), 0) << "_locking got byte 0 held in mode " << ModeName(mode);
    holder.unlock();
    EXPECT_EQ(_locking(fd, _LK_NBLCK, 1), 0);
    _locking(fd, _LK_UNLCK, 1);
    _close(fd);
  }
}

TEST_F(FileLockTest, ReadOnlyLockFileStillTakesSharedLocks) {
  // A warm cache in a read-only place: the lock file cannot be opened for writing, so a
  // shared lock falls back to a read-only handle; an exclusive one reports the error.
  { FileLock create(lock_path_); }
  ASSERT_TRUE(SetFileAttributesW(Wide(lock_path_).c_str(), FILE_ATTRIBUTE_READONLY));
  HANDLE writable = CreateFileW(Wide(lock_path_).c_str(), GENERIC_READ | GENERIC_WRITE, FILE_SHARE_READ |
                                FILE_SHARE_WRITE | FILE_SHARE_DELETE, nullptr, OPEN_EXISTING, 0, nullptr);
  if (writable != INVALID_HANDLE_VALUE) {
    CloseHandle(writable);
    SetFileAttributesW(Wide(lock_path_).c_str(), FILE_ATTRIBUTE_NORMAL);
    GTEST_SKIP() << "a read-only file opened for writing here (wine running as root ignores the attribute)";
  }
  {
    FileLock reader(lock_path_, LockMode::kShared);
    EXPECT_TRUE(reader.try_lock());
    EXPECT_THROW(FileLock(lock_path_, LockMode::kExclusive), FileLockError);
  }
  SetFileAttributesW(Wide(lock_path_).c_str(), FILE_ATTRIBUTE_NORMAL);
}

TEST_F(FileLockTest, Utf8PathIsTheSameWideName) {
  const std::string name = "cach\xC3\xA9_\xE6\x97\xA5\xE6\x9C\xAC.bin";  // "caché_日本.bin" in UTF-8
  const std::string path = LockPathFor(dir_ + "\\" + name);
  FileLock lock(path);
  ASSERT_TRUE(lock.try_lock());
  const std::wstring wide = Wide(dir_) + L"\\cach\u00E9_\u65E5\u672C.bin.lock";
  EXPECT_NE(GetFileAttributesW(wide.c_str()), INVALID_FILE_ATTRIBUTES) << "no file named by the wide path";
  FileLock other(path);
  EXPECT_FALSE(other.try_lock());
}

TEST_F(FileLockTest, InvalidUtf8PathIsAnErrorNamingIt) {
  const std::string path = dir_ + "\\bad\xFF.lock";
  try {
    FileLock lock(path);
    FAIL() << "expected FileLockError";
  } catch (const FileLockError& error) {
    EXPECT_NE(std::string(error.what()).find("not valid UTF-8"), std::string::npos) << error.what();
  }
}

TEST_F(FileLockTest, LockedLockFileStaysReadableAndDeletable) {
  FileLock holder(lock_path_);
  ASSERT_TRUE(holder.try_lock());
  HANDLE reader = CreateFileW(Wide(lock_path_).c_str(), GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE, nullptr,
                              OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, nullptr);
  EXPECT_NE(reader, INVALID_HANDLE_VALUE) << "sharing violation opening a locked lock file: " << GetLastError();
  if (reader != INVALID_HANDLE_VALUE) CloseHandle(reader);
  // A peer that deletes the lock file on release (filelock on Windows) must not fail with a
  // sharing violation because we hold it open.
  EXPECT_TRUE(DeleteFileW(Wide(lock_path_).c_str())) << "Windows error " << GetLastError();
}

TEST_F(FileLockTest, DirectoryAtLockPathRefused) {
  ASSERT_TRUE(CreateDirectoryW(Wide(lock_path_).c_str(), nullptr));
  EXPECT_THROW(FileLock lock(lock_path_), FileLockError);
}

TEST_F(FileLockTest, SymlinkAtLockPathRefused) {
  const std::string target = dir_ + "\\elsewhere";
  if (!CreateSymbolicLinkW(Wide(lock_path_).c_str(), Wide(target).c_str(),
                           0x2 /* SYMBOLIC_LINK_FLAG_ALLOW_UNPRIVILEGED_CREATE */)) {
    GTEST_SKIP() << "cannot create a symlink here (Windows error " << GetLastError() << ")";
  }
  const DWORD attributes = GetFileAttributesW(Wide(lock_path_).c_str());
  if (attributes == INVALID_FILE_ATTRIBUTES || !(attributes & FILE_ATTRIBUTE_REPARSE_POINT)) {
    // Wine 8 (Debian 12) reports success from CreateSymbolicLinkW but creates nothing, and
    // follows Linux symlinks even with FILE_FLAG_OPEN_REPARSE_POINT: this case needs Windows.
    GTEST_SKIP() << "CreateSymbolicLinkW reported success but made no reparse point (wine 8 stubs it)";
  }
  try {
    FileLock lock(lock_path_);
    FAIL() << "expected FileLockError";
  } catch (const FileLockError& error) {
    EXPECT_NE(std::string(error.what()).find("symlink"), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find(lock_path_), std::string::npos) << error.what();
  }
  EXPECT_FALSE(testing::FileExists(target));
}

TEST_F(FileLockTest, PeerThatDeletesAndRecreatesDoesNotGiveTwoHolders) {
  // Our lock opened the original file; a peer (sharing read and write only, as Python's
  // os.open does) held it, released it and closed it...
  FileLock late(lock_path_);
  {
    RawLockFileEx old_holder(lock_path_);
    ASSERT_TRUE(old_holder.valid());
    ASSERT_TRUE(old_holder.TryLock(/*exclusive=*/true));
    old_holder.Unlock();
  }
  // ...then deleted it (filelock's Windows release does), which our sharing mode allows,
  // and a newcomer created and locked a new one.
  ASSERT_TRUE(DeleteFileW(Wide(lock_path_).c_str())) << "Windows error " << GetLastError();
  // (Under wine the newcomer reopens the same, still open file -- wine has no pending-delete
  // state -- so there this case holds trivially; the rename case below checks identity.)
  RawLockFileEx newcomer(lock_path_);
  if (!newcomer.valid()) {
    // Classic delete semantics: the name stays taken until every handle is closed, so no
    // second file can exist; our lock must then still refuse the pending-delete file.
    bool got = false;
    try {
      got = late.try_lock();
    } catch (const FileLockError&) {  // reopening a pending-delete name is refused
    }
    EXPECT_FALSE(got) << "locked a file with a pending delete";
    return;
  }
  ASSERT_TRUE(newcomer.TryLock(/*exclusive=*/true));
  // The deleted file is free, yet taking it must not count: the newcomer holds the path.
  EXPECT_FALSE(late.try_lock_for(milliseconds(200)));
  newcomer.Unlock();
  EXPECT_TRUE(late.try_lock());
}

TEST_F(FileLockTest, PendingDeleteIsWaitedOutNotAnError) {
  // A peer deleted the lock file while another process (here: another FileLock) still had
  // it open, so the name is pending deletion: opening it fails with access denied. A new
  // FileLock must neither throw nor lock the doomed file; once the last handle closes, the
  // name is free and the lock is taken.
  auto other = std::make_unique<FileLock>(lock_path_);
  ASSERT_TRUE(DeleteFileW(Wide(lock_path_).c_str())) << "Windows error " << GetLastError();
  HANDLE probe = CreateFileW(Wide(lock_path_).c_str(), GENERIC_READ,
                             FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, nullptr, OPEN_ALWAYS,
                             FILE_ATTRIBUTE_NORMAL, nullptr);
  if (probe != INVALID_HANDLE_VALUE) {
    CloseHandle(probe);
    // Wine 8 lets a deleted-but-open name be opened again (the same file; no pending-delete
    // state), and Windows 10+ with POSIX delete semantics frees the name at once.
    GTEST_SKIP() << "a deleted but still open lock file could be reopened: no pending delete to wait out here";
  }
  ASSERT_EQ(GetLastError(), static_cast<DWORD>(ERROR_ACCESS_DENIED));
  std::unique_ptr<FileLock> late;
  ASSERT_NO_THROW(late = std::make_unique<FileLock>(lock_path_));
  bool got = true;
  EXPECT_NO_THROW(got = late->try_lock_for(milliseconds(150)));
  EXPECT_FALSE(got) << "locked a file whose delete is pending";
  other.reset();
  EXPECT_TRUE(late->try_lock());
  EXPECT_TRUE(testing::FileExists(lock_path_));
  EXPECT_FALSE(CanLock(LockMode::kShared));
}

TEST_F(FileLockTest, PeerThatRenamesAndRecreatesDoesNotGiveTwoHolders) {
  // The path can also come to name another file without any pending delete: a peer renames
  // the lock file away (our sharing mode allows it) and a newcomer creates a new one.
  FileLock late(lock_path_);
  ASSERT_TRUE(MoveFileExW(Wide(lock_path_).c_str(), Wide(lock_path_ + ".old").c_str(), 0))
      << "Windows error " << GetLastError();
  RawLockFileEx newcomer(lock_path_);
  ASSERT_TRUE(newcomer.valid());
  ASSERT_TRUE(newcomer.TryLock(/*exclusive=*/true));
  // Our handle's file is free, yet taking it must not count: the newcomer holds the path.
  EXPECT_FALSE(late.try_lock_for(milliseconds(200)));
  newcomer.Unlock();
  EXPECT_TRUE(late.try_lock());
  EXPECT_FALSE(CanLock(LockMode::kShared));  // ...and now it holds the file at the path
}

}  // namespace
}  // namespace util
}  // namespace torch_tensorrt_rtx

#endif  // _WIN32
