// FileLock primitives for Unix: BSD flock(2), the primitive Python's filelock uses.
#ifndef _WIN32

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "core/util/file_lock_platform.h"

namespace torch_tensorrt_rtx {
namespace util {
namespace platform {

const std::intptr_t kInvalidHandle = -1;

namespace {

[[noreturn]] void ThrowOsError(const char* what, const std::string& path, int error) {
  throw FileLockError(std::string(what) + " lock file " + path + ": " + std::strerror(error) +
                      (error == ELOOP ? " (a symlink at the lock path is refused)" : ""));
}

}  // namespace

std::intptr_t OpenLockFile(const std::string& path) {
  // O_NONBLOCK: opening a FIFO planted at the lock path read-only would wait for a writer forever.
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK,
                0666);  // & ~umask, as py-filelock creates it
  } while (fd < 0 && errno == EINTR);
  if (fd < 0 && (errno == EACCES || errno == EPERM || errno == EROFS)) {
    do {
      fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    } while (fd < 0 && errno == EINTR);
  }
  if (fd < 0 && errno == EISDIR) {
    throw FileLockError("lock file " + path + " is not a regular file (a directory at the lock path is refused)");
  }
  if (fd < 0) {
    ThrowOsError("cannot open", path, errno);
  }
  struct stat info {};
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    ::close(fd);
    throw FileLockError("lock file " + path +
                        " is not a regular file (a FIFO, device or directory at the lock path is refused)");
  }
  return fd;
}

void CloseLockFile(std::intptr_t handle) noexcept {
  ::close(static_cast<int>(handle));
}

bool LockFile(std::intptr_t handle, LockMode mode, bool blocking, const std::string& path) {
  const int operation = (mode == LockMode::kShared ? LOCK_SH : LOCK_EX) | (blocking ? 0 : LOCK_NB);
  while (::flock(static_cast<int>(handle), operation) != 0) {
    if (errno == EINTR) {
      continue;
    }
    if (errno == EWOULDBLOCK && !blocking) {
      return false;
    }
    ThrowOsError("cannot flock", path, errno);
  }
  return true;
}

void UnlockFile(std::intptr_t handle) noexcept {
  ::flock(static_cast<int>(handle), LOCK_UN);
}

bool IsStillAtPath(std::intptr_t handle, const std::string& path) noexcept {
  struct stat held {};
  struct stat at_path {};
  if (::fstat(static_cast<int>(handle), &held) != 0 || held.st_nlink == 0) {
    return false;
  }
  if (::lstat(path.c_str(), &at_path) != 0) {
    return false;
  }
  return held.st_dev == at_path.st_dev && held.st_ino == at_path.st_ino;
}

}  // namespace platform
}  // namespace util
}  // namespace torch_tensorrt_rtx

#endif  // !_WIN32
