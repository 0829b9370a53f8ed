// FileLock primitives for Windows: LockFileEx on byte range (0, 1), the byte Python's
// filelock locks (LockFileEx in new releases, msvcrt.locking in old ones: same range, and
// the two exclude each other). Cross-compiled with mingw-w64 and tested under wine by
// scripts/windows_test.sh; wine is not Windows, so that is a strong check, not a proof.
#ifdef _WIN32

#define WIN32_LEAN_AND_MEAN
#include <windows.h>

#include <optional>
#include <string>
#include <utility>

#include "core/util/file_lock_platform.h"
#include "core/util/windows_strings.h"

namespace torch_tensorrt_rtx {
namespace util {
namespace platform {

const std::intptr_t kInvalidHandle = reinterpret_cast<std::intptr_t>(INVALID_HANDLE_VALUE);

namespace {

// Every open of the lock file shares read, write and delete: readers of the lock file,
// Python's filelock (which opens it with the C runtime's read-write sharing) and peers
// that delete it on release must never fail with a sharing violation because we hold it.
constexpr DWORD kShareAll = FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE;

[[noreturn]] void ThrowOsError(const char* what, const std::string& path, DWORD error) {
  throw FileLockError(std::string(what) + " lock file " + path + ": " + windows::DescribeError(error));
}

HANDLE AsHandle(std::intptr_t handle) {
  return reinterpret_cast<HANDLE>(handle);
}

// Paths are UTF-8 everywhere in this project; Windows wants UTF-16. Invalid UTF-8 is an
// error naming the path, never a silently mangled file name.
std::wstring WidePath(const std::string& path) {
  if (path.empty()) {
    throw FileLockError("cannot open lock file: the path is empty");
  }
  std::optional<std::wstring> wide = windows::Utf8ToWide(path);
  if (!wide) {
    throw FileLockError("cannot open lock file " + path + ": the path is not valid UTF-8");
  }
  return std::move(*wide);
}

// Whether the last failed call met a file whose deletion is pending. CreateFileW reports
// that as ERROR_ACCESS_DENIED, like a real permission problem; the NTSTATUS tells them apart.
bool LastErrorWasDeletePending() {
  constexpr LONG kStatusDeletePending = static_cast<LONG>(0xC0000056);
  using GetLastNtStatus = LONG(WINAPI*)();
  static const GetLastNtStatus get_last_nt_status = reinterpret_cast<GetLastNtStatus>(
      reinterpret_cast<void*>(GetProcAddress(GetModuleHandleW(L"ntdll.dll"), "RtlGetLastNtStatus")));
  return get_last_nt_status != nullptr && get_last_nt_status() == kStatusDeletePending;
}

// Opens whatever is at `wide_path` without following a reparse point, for identity checks.
HANDLE OpenForIdentity(const std::wstring& wide_path) {
  return CreateFileW(wide_path.c_str(), FILE_READ_ATTRIBUTES, kShareAll, nullptr, OPEN_EXISTING,
                     FILE_FLAG_OPEN_REPARSE_POINT | FILE_FLAG_BACKUP_SEMANTICS, nullptr);
}

}  // namespace

std::intptr_t OpenLockFile(const std::string& path) {
  const std::wstring wide_path = WidePath(path);
  // FILE_FLAG_OPEN_REPARSE_POINT opens a symlink or junction itself (never its target,
  // which is therefore never created), and we then refuse it.
  HANDLE handle = CreateFileW(wide_path.c_str(), GENERIC_READ | GENERIC_WRITE, kShareAll, nullptr, OPEN_ALWAYS,
                              FILE_ATTRIBUTE_NORMAL | FILE_FLAG_OPEN_REPARSE_POINT, nullptr);
  if (handle == INVALID_HANDLE_VALUE && GetLastError() == ERROR_ACCESS_DENIED && LastErrorWasDeletePending()) {
    // A peer deleted the lock file (Python's filelock does on every release on Windows)
    // while another process still has it open: the name frees when that handle closes.
    return kInvalidHandle;
  }
  if (handle == INVALID_HANDLE_VALUE && GetLastError() == ERROR_ACCESS_DENIED) {
    // Both lock modes work on a read-only handle: a warm cache in a read-only location.
    handle = CreateFileW(wide_path.c_str(), GENERIC_READ, kShareAll, nullptr, OPEN_EXISTING,
                         FILE_ATTRIBUTE_NORMAL | FILE_FLAG_OPEN_REPARSE_POINT, nullptr);
  }
  if (handle == INVALID_HANDLE_VALUE) {
    ThrowOsError("cannot open", path, GetLastError());
  }
  BY_HANDLE_FILE_INFORMATION info;
  if (!GetFileInformationByHandle(handle, &info)) {
    const DWORD error = GetLastError();
    CloseHandle(handle);
    ThrowOsError("cannot inspect", path, error);
  }
  if (info.dwFileAttributes & FILE_ATTRIBUTE_REPARSE_POINT) {
    CloseHandle(handle);
    throw FileLockError("cannot open lock file " + path +
                        ": a symlink or junction (reparse point) at the lock path is refused; expected a regular file");
  }
  if (info.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) {
    CloseHandle(handle);
    throw FileLockError("cannot open lock file " + path + ": it is a directory; expected a regular file");
  }
  return reinterpret_cast<std::intptr_t>(handle);
}

void CloseLockFile(std::intptr_t handle) noexcept {
  CloseHandle(AsHandle(handle));
}

bool LockFile(std::intptr_t handle, LockMode mode, bool blocking, const std::string& path) {
  OVERLAPPED range = {};  // offset 0
  const DWORD flags =
      (mode == LockMode::kExclusive ? LOCKFILE_EXCLUSIVE_LOCK : 0) | (blocking ? 0 : LOCKFILE_FAIL_IMMEDIATELY);
  if (LockFileEx(AsHandle(handle), flags, 0, /*nNumberOfBytesToLockLow=*/1, 0, &range)) {
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
  // A peer may have deleted the lock file after we opened it (Python's filelock deletes it
  // on release on Windows; we share delete so that it can). With the classic semantics
  // the name lingers with a pending delete; with POSIX semantics (Windows 10 1809+) the
  // name is gone at once and may already be a new file: so check both the pending delete
  // and that the path still names the file we hold (same volume and file index), the
  // Windows form of the POSIX device+inode check.
  FILE_STANDARD_INFO standard;
  if (!GetFileInformationByHandleEx(AsHandle(handle), FileStandardInfo, &standard, sizeof(standard)) ||
      standard.DeletePending || standard.NumberOfLinks == 0) {
    return false;
  }
  BY_HANDLE_FILE_INFORMATION held;
  if (!GetFileInformationByHandle(AsHandle(handle), &held)) {
    return false;
  }
  std::wstring wide_path;
  try {
    wide_path = WidePath(path);
  } catch (...) {
    return false;
  }
  HANDLE at_path = OpenForIdentity(wide_path);
  if (at_path == INVALID_HANDLE_VALUE) {
    return false;
  }
  BY_HANDLE_FILE_INFORMATION current;
  const bool same = GetFileInformationByHandle(at_path, &current) &&
                    current.dwVolumeSerialNumber == held.dwVolumeSerialNumber &&
                    current.nFileIndexHigh == held.nFileIndexHigh && current.nFileIndexLow == held.nFileIndexLow;
  CloseHandle(at_path);
  return same;
}

}  // namespace platform
}  // namespace util
}  // namespace torch_tensorrt_rtx

#endif  // _WIN32
