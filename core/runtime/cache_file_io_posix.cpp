// cache_file_io.h for POSIX systems.
#ifndef _WIN32

#include <dirent.h>
#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <system_error>
#include <vector>

#include "core/definitions/cache_protocol.h"
#include "core/runtime/cache_file_io.h"
#include "core/runtime/log.h"

namespace torch_tensorrt_rtx {
namespace runtime {
namespace io {
namespace {

[[noreturn]] void ThrowErrno(const std::string& what, int error = errno) {
  throw std::system_error(error, std::generic_category(), what);
}

std::string ModeText(mode_t mode) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%o", static_cast<unsigned>(mode & 07777));
  return buf;
}

// Why other users can write the file or directory with this stat ("" if they cannot).
std::string UntrustedReason(const struct stat& info, const std::string& what) {
  const uid_t euid = geteuid();
  if (info.st_uid != euid && info.st_uid != 0) {
    return what + " is owned by user id " + std::to_string(info.st_uid) + ", not by you (" +
           std::to_string(euid) + ") or root";
  }
  if (info.st_mode & S_IWOTH) {
    return what + " is writable by every user (mode " + ModeText(info.st_mode) + ")";
  }
  if ((info.st_mode & S_IWGRP) && info.st_gid != getegid()) {
    return what + " is writable by group id " + std::to_string(info.st_gid) + " (mode " +
           ModeText(info.st_mode) + ")";
  }
  return "";
}

void CloseQuietly(int fd) noexcept {
  if (fd >= 0) ::close(fd);
}

void FsyncDirectory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) ThrowErrno("open directory " + dir);
  const int rc = ::fsync(fd);
  const int saved = errno;
  ::close(fd);
  if (rc != 0) ThrowErrno("fsync directory " + dir, saved);
}

}  // namespace

std::optional<ReadableFile> ReadableFile::Open(const std::string& path,
                                               std::optional<std::uint64_t> max_bytes) {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::nullopt;
    if (errno == ELOOP) {
      throw CacheFileRefused(path + " is a symlink (expected a regular file); set the cache path "
                             "to the link's target instead");
    }
    ThrowErrno("open " + path);
  }
  struct stat info;
  if (::fstat(fd, &info) != 0) {
    const int saved = errno;
    ::close(fd);
    ThrowErrno("fstat " + path, saved);
  }
  std::string refusal;
  if (!S_ISREG(info.st_mode)) {
    refusal = path + " is not a regular file (a FIFO, device, socket or directory)";
  } else if (std::string reason = UntrustedReason(info, "file " + path); !reason.empty()) {
    refusal = reason;
  } else if (max_bytes && static_cast<std::uint64_t>(info.st_size) > *max_bytes) {
    refusal = path + " is " + std::to_string(info.st_size) +
              " bytes, more than the cache size cap of " + std::to_string(*max_bytes) + " bytes";
  }
  if (!refusal.empty()) {
    ::close(fd);
    throw CacheFileRefused(refusal);
  }
  return ReadableFile(fd, static_cast<std::uint64_t>(info.st_size), path);
}

void ReadableFile::Close() noexcept {
  CloseQuietly(static_cast<int>(handle_));
  handle_ = -1;
}

void ReadableFile::ReadAt(std::uint64_t offset, char* out, std::size_t size) const {
  while (size > 0) {
    const ssize_t n = ::pread(static_cast<int>(handle_), out, size, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      ThrowErrno("read " + path_);
    }
    if (n == 0) {
      throw std::system_error(EIO, std::generic_category(),
                              path_ + " ended " + std::to_string(size) + " bytes early");
    }
    out += n;
    offset += static_cast<std::uint64_t>(n);
    size -= static_cast<std::size_t>(n);
  }
}

TempFile TempFile::CreateBeside(const std::string& path) {
  std::string name = path + protocol::kTempMarker + "XXXXXX";
  const int fd = ::mkostemp(&name[0], O_CLOEXEC);
  if (fd < 0) ThrowErrno("create temp file beside " + path);
  return TempFile(fd, std::move(name));
}

TempFile::TempFile(TempFile&& other) noexcept : handle_(other.handle_), name_(std::move(other.name_)) {
  other.handle_ = -1;
  other.name_.clear();
}

TempFile::~TempFile() {
  CloseQuietly(static_cast<int>(handle_));
  if (!name_.empty()) ::unlink(name_.c_str());
}

void TempFile::Write(const void* data, std::size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(static_cast<int>(handle_), p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      ThrowErrno("write " + name_);
    }
    p += n;
    size -= static_cast<std::size_t>(n);
  }
}

void TempFile::CommitTo(const std::string& path) {
  const int fd = static_cast<int>(handle_);
  if (::fsync(fd) != 0) ThrowErrno("fsync " + name_);
  handle_ = -1;  // close() releases the descriptor even when it reports an error
  if (::close(fd) != 0) ThrowErrno("close " + name_);
  // Check again: a link may have appeared at the path after our first look.
  if (IsSymlink(path)) throw CacheFileRefused(path + " became a symlink");
  if (::rename(name_.c_str(), path.c_str()) != 0) ThrowErrno("rename " + name_ + " to " + path);
  name_.clear();  // committed: the destructor must not delete it
  FsyncDirectory(DirName(path));
}

std::string AbsolutePath(const std::string& path) {
  std::string full = path;
  if (full.empty() || full[0] != '/') {
    char buf[PATH_MAX];
    if (::getcwd(buf, sizeof(buf)) == nullptr) return path;
    full = std::string(buf) + "/" + path;
  }
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (start <= full.size()) {
    std::size_t end = full.find('/', start);
    if (end == std::string::npos) end = full.size();
    const std::string part = full.substr(start, end - start);
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    start = end + 1;
  }
  std::string out;
  for (const std::string& part : parts) out += "/" + part;
  return out.empty() ? "/" : out;
}

std::string DirName(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string BaseName(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

bool Exists(const std::string& path) noexcept {
  struct stat info;
  return ::lstat(path.c_str(), &info) == 0;
}

bool IsSymlink(const std::string& path) noexcept {
  struct stat info;
  return ::lstat(path.c_str(), &info) == 0 && S_ISLNK(info.st_mode);
}

void MakePrivateDirs(const std::string& dir) {
  struct stat info;
  if (dir.empty() || ::stat(dir.c_str(), &info) == 0) return;
  MakePrivateDirs(DirName(dir));
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) ThrowErrno("mkdir " + dir);
}

void CheckDirectoryTrusted(const std::string& dir) {
  struct stat info;
  if (::stat(dir.c_str(), &info) != 0) return;
  const std::string reason = UntrustedReason(info, "directory " + dir);
  if (!reason.empty()) throw CacheFileRefused(reason + "; use a directory only you can write");
}

void RemoveStaleTempFiles(const std::string& path) noexcept {
  const std::string dir = DirName(path);
  const std::string name = BaseName(path);
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return;
  while (struct dirent* entry = ::readdir(d)) {
    const std::string file = entry->d_name;
    if (IsOwnTempName(name, file) && ::unlink((dir + "/" + file).c_str()) == 0) {
      LogInfo("runtime cache: removed " + dir + "/" + file + " left by an interrupted save");
    }
  }
  ::closedir(d);
}

std::string DefaultCacheDir() {
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  std::string base;
  // The XDG spec says a relative XDG_CACHE_HOME is invalid and must be ignored.
  if (xdg != nullptr && xdg[0] == '/') {
    base = xdg;
  } else {
    const char* home = std::getenv("HOME");
    std::string home_dir = home != nullptr && home[0] == '/' ? home : "";
    if (home_dir.empty()) {
      // As Python's pwd.getpwuid(os.geteuid()).pw_dir: the password database.
      std::vector<char> buf(16384);
      struct passwd entry;
      struct passwd* found = nullptr;
      if (::getpwuid_r(geteuid(), &entry, buf.data(), buf.size(), &found) == 0 && found != nullptr &&
          found->pw_dir != nullptr) {
        home_dir = found->pw_dir;
      }
    }
    base = home_dir + "/.cache";
  }
  return base + "/" + protocol::kDefaultCacheDir;
}

}  // namespace io
}  // namespace runtime
}  // namespace torch_tensorrt_rtx

#endif  // !_WIN32
