// FileLock primitives for Windows: LockFileEx on byte range (0, 1), the range Python's
// filelock locks. Not built or tested on the project's Linux machines; kept compiling
// behind the same interface as file_lock_posix.cpp.
#ifdef _WIN32

#define WIN32_LEAN_AND_MEAN
#include <windows.h>

#include <string>

#include "core/util/file_lock_platform.h"

namespace torch_tensorrt_rtx {
namespace util {
namespace platform {

const std::intptr_t kInvalidHandle = reinterpret_cast<std::intptr_t>(INVALID_HANDLE_VALUE);

namespace {

[[noreturn]] void ThrowOsError(const char* what, const std::string& path, DWORD error) {
  throw FileLockError(std::string(what) + " lock file " + path + ": Windows error " + std::to_string(error));
}

HANDLE AsHandle(std::intptr_t handle) {
  return reinterpret_cast<HANDLE>(handle);
}

}  // namespace

std::intptr_t OpenLockFile(const std::string& path, bool read_only_fallback) {
  const int wide_length = MultiByteToWideChar(CP_UTF8, 0, path.c_str(), -1, nullptr, 0);
  std::wstring wide_path(wide_length > 0 ? wide_length : 0, L'\0');
  MultiByteToWideChar(CP_UTF8, 0, path.c_str(), -1, &wide_path[0], wide_length);
  // FILE_FLAG_OPEN_REPARSE_POINT opens a symlink itself, which we then refuse.
  HANDLE handle = CreateFileW(wide_path.c_str(), GENERIC_READ | GENERIC_WRITE,
                              FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, nullptr, OPEN_ALWAYS,
                              FILE_ATTRIBUTE_NORMAL | FILE_FLAG_OPEN_REPARSE_POINT, nullptr);
  if (handle == INVALID_HANDLE_VALUE && read_only_fallback && GetLastError() == ERROR_ACCESS_DENIED) {
    // Shared locks work on a read-only handle: a warm cache in a read-only location.
    handle = CreateFileW(wide_path.c_str(), GENERIC_READ,
                         FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, nullptr, OPEN_EXISTING,
                         FILE_ATTRIBUTE_NORMAL | FILE_FLAG_OPEN_REPARSE_POINT, nullptr);
  }
  if (handle == INVALID_HANDLE_VALUE) {
    ThrowOsError("cannot open", path, GetLastError());
  }
  BY_HANDLE_FILE_INFORMATION info;
  if (GetFileInformationByHandle(handle, &info) && (info.dwFileAttributes & FILE_ATTRIBUTE_REPARSE_POINT)) {
    CloseHandle(handle);
    throw FileLockError("cannot open lock file " + path + ": a symlink at the lock path is refused");
  }
  return reinterpret_cast<std::intptr_t>(handle);
}

void CloseLockFile(std::intptr_t handle) noexcept {
  CloseHandle(AsHandle(handle));
}

bool LockFile(std::intptr_t handle, LockMode mode, bool blocking, const std::string& path) {
  OVERLAPPED range = {};
  DWORD flags = (mode == LockMode::kExclusive ? LOCKFILE_EXCLUSIVE_LOCK : 0) |
                (blocking ? 0 : LOCKFILE_FAIL_IMMEDIATELY);
  if (LockFileEx(AsHandle(handle), flags, 0, 1, 0, &range)) {
    return true;
  }
  const DWORD error = GetLastError();
  if (!blocking && error == ERROR_LOCK_VIOLATION) {
    return false;
  }
  ThrowOsError("cannot lock", path, error);
}

void UnlockFile(std::intptr_t handle) noexcept {
  OVERLAPPED range = {};
  UnlockFileEx(AsHandle(handle), 0, 1, 0, &range);
}

bool IsStillAtPath(std::intptr_t handle, const std::string& path) noexcept {
  // A file that is open without FILE_SHARE_DELETE cannot be replaced; with it, a deleted
  // file reports a pending delete through its standard information.
  FILE_STANDARD_INFO info;
  if (!GetFileInformationByHandleEx(AsHandle(handle), FileStandardInfo, &info, sizeof(info))) {
    return false;
  }
  return !info.DeletePending;
}

}  // namespace platform
}  // namespace util
}  // namespace torch_tensorrt_rtx

#endif  // _WIN32
