#include "core/runtime/runtime_cache_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <system_error>
#include <vector>

#include "core/runtime/log.h"

namespace torch_tensorrt_rtx {
namespace runtime {
namespace {

constexpr const char* kTempSuffix = ".tmp";

std::string Absolute(const std::string& path) {
  if (!path.empty() && path[0] == '/') return path;
  char buf[PATH_MAX];
  if (getcwd(buf, sizeof(buf)) == nullptr) return path;
  return std::string(buf) + "/" + path;
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

bool IsSymlink(const std::string& path) {
  struct stat info;
  return lstat(path.c_str(), &info) == 0 && S_ISLNK(info.st_mode);
}

bool Exists(const std::string& path) {
  struct stat info;
  return stat(path.c_str(), &info) == 0;
}

[[noreturn]] void ThrowErrno(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

void MakeDirs(const std::string& dir) {
  if (dir.empty() || Exists(dir)) return;
  MakeDirs(DirName(dir));
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) ThrowErrno("mkdir " + dir);
}

void WriteAll(int fd, const char* data, std::size_t size, const std::string& path) {
  while (size > 0) {
    const ssize_t n = write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      ThrowErrno("write " + path);
    }
    data += n;
    size -= static_cast<std::size_t>(n);
  }
}

// Deletes "<name>.*.tmp" in `dir`: a temp file only lives while its writer holds the
// lock, so one found under the lock belongs to a writer that was killed mid-save.
void RemoveStaleTempFiles(const std::string& dir, const std::string& name) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return;
  const std::string prefix = name + ".";
  const std::size_t suffix_len = std::char_traits<char>::length(kTempSuffix);
  while (struct dirent* entry = readdir(d)) {
    const std::string file = entry->d_name;
    if (file.size() > prefix.size() + suffix_len && file.compare(0, prefix.size(), prefix) == 0 &&
        file.compare(file.size() - suffix_len, suffix_len, kTempSuffix) == 0) {
      if (unlink((dir + "/" + file).c_str()) == 0) {
        LogInfo("runtime cache: removed " + dir + "/" + file + " left by an interrupted save");
      }
    }
  }
  closedir(d);
}

void FsyncDirectory(const std::string& dir) {
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) ThrowErrno("open directory " + dir);
  const int rc = fsync(fd);
  const int saved = errno;
  close(fd);
  if (rc != 0) {
    errno = saved;
    ThrowErrno("fsync directory " + dir);
  }
}

std::string Seconds(std::chrono::milliseconds ms) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f", static_cast<double>(ms.count()) / 1000.0);
  return buf;
}

}  // namespace

RuntimeCacheFile::RuntimeCacheFile(std::string path, std::chrono::milliseconds lock_timeout)
    : path_(Absolute(path)), lock_path_(util::LockPathFor(path_)), lock_timeout_(lock_timeout) {}

bool RuntimeCacheFile::RefuseSymlink(const char* action) const noexcept {
  for (const std::string* p : {&path_, &lock_path_}) {
    if (IsSymlink(*p)) {
      LogWarning(std::string("runtime cache: not ") + action + " " + path_ + ": " + *p +
                 " is a symlink (expected a regular file); set the cache path to the link's "
                 "target instead");
      return true;
    }
  }
  return false;
}

std::optional<std::string> RuntimeCacheFile::TryRead() const noexcept {
  try {
    if (RefuseSymlink("loading")) return std::nullopt;
    if (!Exists(path_)) return std::nullopt;  // no lock file created just to find nothing
    util::FileLock lock(lock_path_, util::LockMode::kShared);
    if (!lock.try_lock_for(lock_timeout_)) {
      LogWarning("runtime cache: could not lock " + lock_path_ + " within " +
                 Seconds(lock_timeout_) + " s; starting with an empty cache");
      return std::nullopt;
    }
    const int fd = open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) return std::nullopt;
      ThrowErrno("open " + path_);
    }
    // Sized from fstat and read in place: one copy from the page cache, no regrowth.
    std::string data;
    struct stat info;
    if (fstat(fd, &info) == 0 && info.st_size > 0) {
      data.resize(static_cast<std::size_t>(info.st_size));
    }
    std::size_t used = 0;
    char spill[1 << 16];  // reads past the fstat size (the file grew) land here first
    while (true) {
      const bool full = used == data.size();
      const ssize_t n = full ? read(fd, spill, sizeof(spill)) : read(fd, &data[used], data.size() - used);
      if (n == 0) break;
      if (n < 0) {
        if (errno == EINTR) continue;
        const int saved = errno;
        close(fd);
        errno = saved;
        ThrowErrno("read " + path_);
      }
      if (full) data.append(spill, static_cast<std::size_t>(n));
      used += static_cast<std::size_t>(n);
    }
    data.resize(used);
    close(fd);
    return std::optional<std::string>(std::move(data));
  } catch (const std::exception& e) {
    LogWarning("runtime cache: cannot read " + path_ + " (" + e.what() +
               "); starting with an empty cache");
  } catch (...) {
    LogWarning("runtime cache: cannot read " + path_ + "; starting with an empty cache");
  }
  return std::nullopt;
}

bool RuntimeCacheFile::TryLoad(
    const std::function<bool(const void*, std::size_t)>& deserialize) const noexcept {
  std::optional<std::string> data = TryRead();
  if (!data) return false;
  std::string reason = "rejected by the runtime (corrupt, truncated, or from another GPU/version)";
  bool ok = false;
  try {
    ok = deserialize(data->data(), data->size());
  } catch (const std::exception& e) {
    reason = e.what();
  } catch (...) {
    reason = "unknown exception";
  }
  if (!ok) {
    LogWarning("runtime cache: cannot use " + path_ + " (" + std::to_string(data->size()) +
               " bytes): " + reason + "; starting with an empty cache");
  }
  return ok;
}

bool RuntimeCacheFile::TrySave(const std::function<std::string()>& serialize) const noexcept {
  std::string blob;
  try {
    blob = serialize();
  } catch (const std::exception& e) {
    LogWarning("runtime cache: serialization failed (" + std::string(e.what()) + "); " + path_ +
               " left untouched");
    return false;
  } catch (...) {
    LogWarning("runtime cache: serialization failed; " + path_ + " left untouched");
    return false;
  }
  return TrySaveBytes(blob.data(), blob.size());
}

bool RuntimeCacheFile::TrySaveBytes(const void* data, std::size_t size) const noexcept {
  if (data == nullptr || size == 0) {
    LogDebug("runtime cache: nothing to save to " + path_);
    return false;
  }
  try {
    if (RefuseSymlink("saving")) return false;
    MakeDirs(DirName(path_));
    util::FileLock lock(lock_path_, util::LockMode::kExclusive);
    if (!lock.try_lock_for(lock_timeout_)) {
      LogWarning("runtime cache: could not lock " + lock_path_ + " within " +
                 Seconds(lock_timeout_) + " s; " + path_ + " left untouched");
      return false;
    }
    ReplaceUnderLock(data, size);
    return true;
  } catch (const std::exception& e) {
    LogWarning("runtime cache: cannot write " + path_ + " (" + e.what() +
               "); file left untouched");
  } catch (...) {
    LogWarning("runtime cache: cannot write " + path_ + "; file left untouched");
  }
  return false;
}

void RuntimeCacheFile::ReplaceUnderLock(const void* data, std::size_t size) const {
  const std::string dir = DirName(path_);
  RemoveStaleTempFiles(dir, BaseName(path_));
  std::string temp = dir + "/" + BaseName(path_) + ".XXXXXX" + kTempSuffix;
  const int fd = mkstemps(&temp[0], static_cast<int>(std::char_traits<char>::length(kTempSuffix)));
  if (fd < 0) ThrowErrno("create temp file in " + dir);
  bool closed = false;
  try {
    WriteAll(fd, static_cast<const char*>(data), size, temp);
    if (fsync(fd) != 0) ThrowErrno("fsync " + temp);
    closed = true;  // close() releases the descriptor even when it reports an error
    if (close(fd) != 0) ThrowErrno("close " + temp);
  } catch (...) {
    if (!closed) close(fd);
    unlink(temp.c_str());
    throw;
  }
  // Check again under the lock: the link may have appeared after our first look.
  if (IsSymlink(path_)) {
    unlink(temp.c_str());
    errno = ELOOP;
    ThrowErrno(path_ + " became a symlink");
  }
  if (rename(temp.c_str(), path_.c_str()) != 0) {
    const int saved = errno;
    unlink(temp.c_str());
    errno = saved;
    ThrowErrno("rename " + temp + " to " + path_);
  }
  FsyncDirectory(dir);
}

}  // namespace runtime
}  // namespace torch_tensorrt_rtx
