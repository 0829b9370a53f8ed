// Internal to FileLock: the per-platform primitives (file_lock_posix.cpp on Unix,
// file_lock_windows.cpp on Windows). Each file compiles to nothing on the other
// platform, so both can stay in every build.
#ifndef TORCH_TENSORRT_RTX_CORE_UTIL_FILE_LOCK_PLATFORM_H_
#define TORCH_TENSORRT_RTX_CORE_UTIL_FILE_LOCK_PLATFORM_H_

#include <cstdint>
#include <string>

#include "core/util/file_lock.h"

namespace torch_tensorrt_rtx {
namespace util {
namespace platform {

extern const std::intptr_t kInvalidHandle;

// Opens or creates the lock file read-write, close-on-exec, refusing a symlink. An existing
// lock file that cannot be opened for writing (read-only image, another user's file) is
// opened read-only instead, for both lock modes: flock and LockFileEx work on such
// descriptors. A permission error that remains is an error (FileLockError), never "busy". Returns kInvalidHandle when the name
// is only momentarily unusable (Windows: a peer deleted the lock file while someone still
// has it open, so the delete is pending); the caller tries again later. Throws
// FileLockError naming the path and the OS error for anything else.
std::intptr_t OpenLockFile(const std::string& path);
void CloseLockFile(std::intptr_t handle) noexcept;

// Returns true if the lock was taken, false if another holder has it (only possible
// when !blocking). Throws FileLockError on any other failure.
bool LockFile(std::intptr_t handle, LockMode mode, bool blocking, const std::string& path);
void UnlockFile(std::intptr_t handle) noexcept;

// True while `handle` is still the file at `path` (a peer may have unlinked or
// replaced it between our open and our lock).
bool IsStillAtPath(std::intptr_t handle, const std::string& path) noexcept;

}  // namespace platform
}  // namespace util
}  // namespace torch_tensorrt_rtx

#endif  // TORCH_TENSORRT_RTX_CORE_UTIL_FILE_LOCK_PLATFORM_H_
