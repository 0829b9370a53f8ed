// cache_file_io.h for Windows. Cross-compiled with mingw-w64 and tested under wine by
// scripts/windows_test.sh (wine is not Windows: a strong check, not a proof).
//
// Windows-specific choices, each matching a POSIX step of cache_file_io_posix.cpp:
//  - Paths are UTF-8 and become UTF-16 with MultiByteToWideChar; invalid UTF-8 is an error
//    naming the path, never a mangled name.
//  - Every open shares read, write and delete, so readers, the lock file's holders and a
//    replacing writer never meet a sharing violation from us.
//  - Reparse points (symlinks, junctions) at the cache path are refused: opened with
//    FILE_FLAG_OPEN_REPARSE_POINT (the link itself, never its target), then checked.
//  - Only regular disk files are read (GetFileType == FILE_TYPE_DISK, not a directory):
//    no named pipe or device (NUL, CON, \\.\pipe\...) can hang or feed a load.
//  - Atomic replace is MoveFileExW(MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH)
//    after FlushFileBuffers. Windows has no directory fsync: WRITE_THROUGH is what makes
//    the rename durable before MoveFileExW returns.
//  - Who may write a directory is an ACL question on Windows; like the Python runtime,
//    this layer does not inspect ACLs (the default directory under %LOCALAPPDATA% is the
//    user's own).
#ifdef _WIN32

#define WIN32_LEAN_AND_MEAN
#include <windows.h>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <random>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "core/definitions/cache_protocol.h"
#include "core/runtime/cache_file_io.h"
#include "core/runtime/log.h"
#include "core/util/windows_strings.h"

namespace torch_tensorrt_rtx {
namespace runtime {
namespace io {
namespace {

[[noreturn]] void ThrowWindowsError(const std::string& what, DWORD error = GetLastError()) {
  throw std::system_error(static_cast<int>(error), std::system_category(), what + ": " + util::windows::DescribeError(error));
}

std::wstring Wide(const std::string& path) {
  std::optional<std::wstring> wide = util::windows::Utf8ToWide(path);
  if (!wide) {
    throw std::system_error(ERROR_NO_UNICODE_TRANSLATION, std::system_category(),
                            "the path " + path + " is not valid UTF-8; expected a UTF-8 path");
  }
  return std::move(*wide);
}

bool IsSeparator(char c) {
  return c == '\\' || c == '/';
}

// Length of the root of a path: "C:\" (3), "C:" (2), "\\server\share\" (to after the share),
// "\" (1), or 0 for a relative path.
std::size_t RootLength(const std::string& path) {
  if (path.size() >= 2 && IsSeparator(path[0]) && IsSeparator(path[1])) {
    std::size_t i = 2;
    for (int part = 0; part < 2 && i <= path.size(); ++part) {
      while (i < path.size() && !IsSeparator(path[i])) ++i;
      if (i < path.size()) ++i;
    }
    return i;
  }
  if (path.size() >= 2 && path[1] == ':') {
    return path.size() >= 3 && IsSeparator(path[2]) ? 3 : 2;
  }
  return !path.empty() && IsSeparator(path[0]) ? 1 : 0;
}

constexpr DWORD kShareAll = FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE;

// An environment variable as UTF-8 ("" if unset): getenv would give the ANSI code page.
std::string EnvUtf8(const wchar_t* name) {
  const DWORD needed = GetEnvironmentVariableW(name, nullptr, 0);
  if (needed == 0) return "";
  std::wstring value(needed, L'\0');
  const DWORD written = GetEnvironmentVariableW(name, &value[0], needed);
  value.resize(written < needed ? written : 0);
  return util::windows::WideToUtf8(value);
}

DWORD Attributes(const std::string& path) noexcept {
  try {
    return GetFileAttributesW(Wide(path).c_str());
  } catch (...) {
    return INVALID_FILE_ATTRIBUTES;
  }
}

}  // namespace

std::optional<ReadableFile> ReadableFile::Open(const std::string& path,
                                               std::optional<std::uint64_t> max_bytes) {
  // FILE_FLAG_OPEN_REPARSE_POINT: a symlink or junction is opened itself, never followed;
  // FILE_FLAG_BACKUP_SEMANTICS lets a directory open, so it is refused with a clear reason.
  HANDLE handle = CreateFileW(Wide(path).c_str(), GENERIC_READ, kShareAll, nullptr, OPEN_EXISTING,
                              FILE_ATTRIBUTE_NORMAL | FILE_FLAG_OPEN_REPARSE_POINT | FILE_FLAG_BACKUP_SEMANTICS,
                              nullptr);
  if (handle == INVALID_HANDLE_VALUE) {
    const DWORD error = GetLastError();
    if (error == ERROR_FILE_NOT_FOUND || error == ERROR_PATH_NOT_FOUND) return std::nullopt;
    ThrowWindowsError("open " + path, error);
  }
  std::string refusal;
  BY_HANDLE_FILE_INFORMATION info;
  LARGE_INTEGER size = {};
  if (GetFileType(handle) != FILE_TYPE_DISK) {
    refusal = path + " is not a regular file (a pipe, console or device)";
  } else if (!GetFileInformationByHandle(handle, &info) || !GetFileSizeEx(handle, &size)) {
    const DWORD error = GetLastError();
    CloseHandle(handle);
    ThrowWindowsError("inspect " + path, error);
  } else if (info.dwFileAttributes & FILE_ATTRIBUTE_REPARSE_POINT) {
    refusal = path + " is a symlink or junction (reparse point; expected a regular file); set the cache "
                     "path to the link's target instead";
  } else if (info.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) {
    refusal = path + " is not a regular file (a directory)";
  } else if (max_bytes && static_cast<std::uint64_t>(size.QuadPart) > *max_bytes) {
    refusal = path + " is " + std::to_string(size.QuadPart) + " bytes, more than the cache size cap of " +
              std::to_string(*max_bytes) + " bytes";
  }
  if (!refusal.empty()) {
    CloseHandle(handle);
    throw CacheFileRefused(refusal);
  }
  return ReadableFile(reinterpret_cast<std::intptr_t>(handle), static_cast<std::uint64_t>(size.QuadPart), path);
}

void ReadableFile::Close() noexcept {
  if (handle_ != -1) CloseHandle(reinterpret_cast<HANDLE>(handle_));
  handle_ = -1;
}

void ReadableFile::ReadAt(std::uint64_t offset, char* out, std::size_t size) const {
  while (size > 0) {
    // A positioned read on a synchronous handle: the OVERLAPPED carries the offset.
    OVERLAPPED at = {};
    at.Offset = static_cast<DWORD>(offset & 0xFFFFFFFFu);
    at.OffsetHigh = static_cast<DWORD>(offset >> 32);
    const DWORD want = size > 0x40000000u ? 0x40000000u : static_cast<DWORD>(size);
    DWORD got = 0;
    if (!ReadFile(reinterpret_cast<HANDLE>(handle_), out, want, &got, &at)) {
      const DWORD error = GetLastError();
      if (error != ERROR_HANDLE_EOF) ThrowWindowsError("read " + path_, error);
    }
    if (got == 0) {
      throw std::system_error(ERROR_HANDLE_EOF, std::system_category(),
                              path_ + " ended " + std::to_string(size) + " bytes early");
    }
    out += got;
    offset += got;
    size -= got;
  }
}

TempFile TempFile::CreateBeside(const std::string& path) {
  // A unique name: 6 random letters and digits (the shape IsOwnTempName and the Python
  // runtime expect), created with CREATE_NEW so an existing name is never reused.
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  thread_local std::mt19937_64 random(std::random_device{}() ^
                                      (static_cast<std::uint64_t>(GetCurrentProcessId()) << 32) ^
                                      static_cast<std::uint64_t>(
                                          std::chrono::steady_clock::now().time_since_epoch().count()));
  DWORD error = ERROR_FILE_EXISTS;
  for (int attempt = 0; attempt < 100 && (error == ERROR_FILE_EXISTS || error == ERROR_ALREADY_EXISTS);
       ++attempt) {
    std::string name = path + protocol::kTempMarker;
    for (int i = 0; i < 6; ++i) name.push_back(kAlphabet[random() % (sizeof(kAlphabet) - 1)]);
    // Not inheritable (no SECURITY_ATTRIBUTES): child processes never get the handle.
    // The default ACL is the directory's (the user's own under %LOCALAPPDATA%).
    HANDLE handle = CreateFileW(Wide(name).c_str(), GENERIC_WRITE, kShareAll, nullptr, CREATE_NEW,
                                FILE_ATTRIBUTE_NORMAL, nullptr);
    if (handle != INVALID_HANDLE_VALUE) return TempFile(reinterpret_cast<std::intptr_t>(handle), std::move(name));
    error = GetLastError();
  }
  ThrowWindowsError("create temp file beside " + path, error);
}

TempFile::TempFile(TempFile&& other) noexcept : handle_(other.handle_), name_(std::move(other.name_)) {
  other.handle_ = -1;
  other.name_.clear();
}

TempFile::~TempFile() {
  if (handle_ != -1) CloseHandle(reinterpret_cast<HANDLE>(handle_));
  if (!name_.empty()) {
    try {
      DeleteFileW(Wide(name_).c_str());
    } catch (...) {
    }
  }
}

void TempFile::Write(const void* data, std::size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const DWORD want = size > 0x40000000u ? 0x40000000u : static_cast<DWORD>(size);
    DWORD wrote = 0;
    if (!WriteFile(reinterpret_cast<HANDLE>(handle_), p, want, &wrote, nullptr)) ThrowWindowsError("write " + name_);
    p += wrote;
    size -= wrote;
  }
}

void TempFile::CommitTo(const std::string& path) {
  HANDLE handle = reinterpret_cast<HANDLE>(handle_);
  if (!FlushFileBuffers(handle)) ThrowWindowsError("flush " + name_);
  handle_ = -1;
  if (!CloseHandle(handle)) ThrowWindowsError("close " + name_);
  // Check again: a link may have appeared at the path after our first look.
  if (IsSymlink(path)) throw CacheFileRefused(path + " became a symlink or junction (reparse point)");
  const std::wstring from = Wide(name_);
  const std::wstring to = Wide(path);
  // Another program (a virus scanner, an indexer, a reader without FILE_SHARE_DELETE) can
  // hold the cache open for a moment and make the replace fail; retry briefly, within the
  // exclusive lock, before giving up with the file untouched.
  for (int attempt = 0;; ++attempt) {
    // MOVEFILE_WRITE_THROUGH: returns only once the rename is on disk. POSIX fsyncs the
    // directory here; Windows has no directory fsync, this flag is its counterpart.
    if (MoveFileExW(from.c_str(), to.c_str(), MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH)) break;
    const DWORD error = GetLastError();
    if (attempt >= 20 || (error != ERROR_ACCESS_DENIED && error != ERROR_SHARING_VIOLATION)) {
      ThrowWindowsError("replace " + path + " with " + name_, error);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  name_.clear();  // committed: the destructor must not delete it
}

std::string AbsolutePath(const std::string& path) {
  // GetFullPathNameW normalises lexically (".", "..", separators), as ntpath.abspath does.
  const std::wstring wide = Wide(path);
  const DWORD needed = GetFullPathNameW(wide.c_str(), 0, nullptr, nullptr);
  if (needed == 0) return path;
  std::wstring full(needed, L'\0');
  const DWORD written = GetFullPathNameW(wide.c_str(), needed, &full[0], nullptr);
  if (written == 0 || written >= needed) return path;
  full.resize(written);
  return util::windows::WideToUtf8(full);
}

std::string DirName(const std::string& path) {
  const std::size_t root = RootLength(path);
  std::size_t slash = path.find_last_of("\\/");
  if (slash == std::string::npos || slash < root) return root > 0 ? path.substr(0, root) : ".";
  while (slash > root && IsSeparator(path[slash - 1])) --slash;  // "a\\b" -> "a"
  return slash <= root ? path.substr(0, root) : path.substr(0, slash);
}

std::string BaseName(const std::string& path) {
  const std::size_t slash = path.find_last_of("\\/");
  const std::size_t root = RootLength(path);
  if (slash == std::string::npos) return path.substr(root);
  return path.substr(slash + 1 > root ? slash + 1 : root);
}

bool Exists(const std::string& path) noexcept {
  // GetFileAttributesW does not follow a symlink: a dangling one exists, as lexists says.
  return Attributes(path) != INVALID_FILE_ATTRIBUTES;
}

bool IsSymlink(const std::string& path) noexcept {
  const DWORD attributes = Attributes(path);
  return attributes != INVALID_FILE_ATTRIBUTES && (attributes & FILE_ATTRIBUTE_REPARSE_POINT);
}

void MakePrivateDirs(const std::string& dir) {
  // "Private" is the inherited ACL on Windows (no mode bits); under %LOCALAPPDATA% only the
  // user (and administrators) can enter.
  if (dir.empty() || dir.size() <= RootLength(dir) || Exists(dir)) return;
  const std::string parent = DirName(dir);
  if (parent != dir) MakePrivateDirs(parent);
  if (!CreateDirectoryW(Wide(dir).c_str(), nullptr)) {
    const DWORD error = GetLastError();
    if (error != ERROR_ALREADY_EXISTS) ThrowWindowsError("create directory " + dir, error);
  }
}

void CheckDirectoryTrusted(const std::string& dir) {
  // Windows: who may write a directory is decided by its ACL, which this layer (like the
  // Python runtime's) does not inspect. A reparse point as the directory is not refused
  // either; only the cache path itself is checked.
  (void)dir;
}

void RemoveStaleTempFiles(const std::string& path) noexcept {
  try {
    const std::string dir = DirName(path);
    const std::string name = BaseName(path);
    const std::string sep = IsSeparator(dir.back()) ? "" : "\\";
    WIN32_FIND_DATAW found;
    HANDLE search = FindFirstFileW(Wide(dir + sep + name + protocol::kTempMarker + "*").c_str(), &found);
    if (search == INVALID_HANDLE_VALUE) return;
    do {
      const std::string file = util::windows::WideToUtf8(found.cFileName);
      if ((found.dwFileAttributes & (FILE_ATTRIBUTE_DIRECTORY | FILE_ATTRIBUTE_REPARSE_POINT)) == 0 &&
          IsOwnTempName(name, file) && DeleteFileW(Wide(dir + sep + file).c_str())) {
        LogInfo("runtime cache: removed " + dir + sep + file + " left by an interrupted save");
      }
    } while (FindNextFileW(search, &found));
    FindClose(search);
  } catch (...) {
  }
}

std::string DefaultCacheDir() {
  // As the Python runtime (cache_file_io.default_cache_dir, platform "windows"):
  // %LOCALAPPDATA%, else %USERPROFILE%\AppData\Local (C:\ if that is unset too).
  std::string base = EnvUtf8(L"LOCALAPPDATA");
  if (base.empty()) {
    std::string home = EnvUtf8(L"USERPROFILE");
    if (home.empty()) home = "C:\\";
    if (!IsSeparator(home.back())) home += "\\";
    base = home + "AppData\\Local";
  }
  while (!base.empty() && IsSeparator(base.back())) base.pop_back();
  return base + "\\" + protocol::kDefaultCacheDir;
}

}  // namespace io
}  // namespace runtime
}  // namespace torch_tensorrt_rtx

#endif  // _WIN32
