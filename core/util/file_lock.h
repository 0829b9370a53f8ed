// FileLock: an advisory, cross-process lock on a lock file, the one the TensorRT-RTX
// runtime cache at path P is guarded by ("P.lock").
//
// It interoperates with Python's `filelock` package on the same file: on Unix both use
// BSD flock(2) (never fcntl/lockf record locks, which live in another namespace and
// silently do not exclude flock holders); on Windows both lock byte range (0, 1) with
// LockFileEx. Callers never see the platform split.
//
// Example:
//
//   FileLock lock(LockPathFor("/home/me/.cache/trt_rtx/runtime.cache"), LockMode::kExclusive);
//   if (!lock.try_lock_for()) {           // default: 10 s, polled every 50 ms
//     LOG_WARNING("runtime cache busy; not saving");
//     return;
//   }
//   WriteCacheAtomically(...);            // released when `lock` leaves scope
//
// Contract:
//  - A lock belongs to one open of the lock file. flock locks are per open file
//    description, so two FileLock objects in one process exclude each other exactly like
//    two processes do; a single FileLock must not be shared between threads without
//    external synchronisation. Use one FileLock per thread or call site.
//  - The lock file is created if missing (read-write, close-on-exec / not inheritable; an
//    existing one that cannot be written is opened read-only, for both modes), never unlinked, and a symlink at the lock path is refused (on Windows any reparse
//    point, a junction too, and a directory). Paths are UTF-8 on every platform; Windows
//    opens them as UTF-16 and shares read, write and delete, so peers can open, and delete,
//    a held lock file.
//  - Peers that unlink the lock file when they release (filelock 3.20.4 to 3.29.4 did on
//    Unix; filelock on Windows deletes it too) cannot produce two holders: after acquiring,
//    the lock checks that its descriptor is still the file at the path (device+inode, or
//    volume+file index on Windows) and otherwise reopens and tries again.
//  - Windows builds are cross-compiled with mingw-w64 and tested under wine
//    (scripts/windows_test.sh), which is not Windows.
//  - Failing to open the lock file throws FileLockError naming the path and OS error.
//    Not getting the lock in time is an ordinary outcome: try_lock/try_lock_for return
//    false. The destructor releases and never throws. Move-only.
#ifndef TORCH_TENSORRT_RTX_CORE_UTIL_FILE_LOCK_H_
#define TORCH_TENSORRT_RTX_CORE_UTIL_FILE_LOCK_H_

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "core/definitions/cache_protocol.h"

namespace torch_tensorrt_rtx {
namespace util {

enum class LockMode { kShared, kExclusive };

// Default timeout (10 s), poll interval (50 ms) and lock suffix (".lock"): the Python
// runtime's values, both read from [cache_protocol] in py/torch_tensorrt_rtx/runtime/definitions.toml.
using protocol::kDefaultLockTimeout;
using protocol::kLockFileSuffix;
using protocol::kLockPollInterval;

// The lock file that guards the file at `guarded_path`: guarded_path + ".lock".
std::string LockPathFor(const std::string& guarded_path);

// The lock file could not be opened or an OS call failed unexpectedly.
class FileLockError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class FileLock final {
 public:
  // Opens (creating if needed) the lock file. Does not lock. Throws FileLockError. (On
  // Windows, a lock file whose deletion by a peer is still pending is opened at the first
  // acquisition attempt instead, which fails until the name is free again.)
  explicit FileLock(std::string lock_path, LockMode mode = LockMode::kExclusive);
  ~FileLock();

  FileLock(FileLock&& other) noexcept;
  FileLock& operator=(FileLock&& other) noexcept;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

  // Blocks until the lock is held. Throws FileLockError on an unexpected OS error.
  void lock();
  // One attempt; true if the lock is now held.
  bool try_lock();
  // Attempts at least once, then every kLockPollInterval until `timeout` has passed.
  bool try_lock_for(std::chrono::milliseconds timeout = kDefaultLockTimeout);
  // Releases the lock if held; the lock file stays.
  void unlock() noexcept;

  bool owns_lock() const noexcept { return owned_; }
  LockMode mode() const noexcept { return mode_; }
  const std::string& path() const noexcept { return path_; }

 private:
  // One acquisition, (re)opening the file while it is closed or turns out to be stale.
  bool AcquireOnce(bool blocking);
  void Close() noexcept;

  std::string path_;  // empty once moved from
  LockMode mode_;
  std::intptr_t handle_;  // a POSIX descriptor or a Windows HANDLE; see file_lock_platform.h
  bool owned_ = false;
};

}  // namespace util
}  // namespace torch_tensorrt_rtx

#endif  // TORCH_TENSORRT_RTX_CORE_UTIL_FILE_LOCK_H_
