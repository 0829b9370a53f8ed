#include "core/runtime/runtime_cache_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <system_error>
#include <vector>

#include "core/runtime/log.h"

namespace torch_tensorrt_rtx {
namespace runtime {
namespace {

constexpr const char* kTempSuffix = ".tmp";

// Lexically normalized like Python's os.path.abspath (no ".", ".." or empty components, no
// trailing slash), so both runtimes name the same files for the same path string.
std::string Absolute(const std::string& path) {
  std::string full = path;
  if (full.empty() || full[0] != '/') {
    char buf[PATH_MAX];
    if (getcwd(buf, sizeof(buf)) == nullptr) return path;
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

// Deletes "<name>.<random>.tmp" (random part without dots) in `dir`: a temp file only
// lives while its writer holds the lock, so one found under the lock belongs to a writer
// that was killed mid-save.
void RemoveStaleTempFiles(const std::string& dir, const std::string& name) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return;
  const std::string prefix = name + ".";
  const std::size_t suffix_len = std::char_traits<char>::length(kTempSuffix);
  while (struct dirent* entry = readdir(d)) {
    const std::string file = entry->d_name;
    if (file.size() > prefix.size() + suffix_len && file.compare(0, prefix.size(), prefix) == 0 &&
        file.compare(file.size() - suffix_len, suffix_len, kTempSuffix) == 0 &&
        // The random part has no dot: "<name>.gpu1.XXXXXX.tmp" is another cache's temp file.
        file.find('.', prefix.size()) == file.size() - suffix_len) {
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

// How much a read buffer grows at least when the file turns out longer than fstat said.
constexpr std::size_t kMinGrowth = std::size_t{1} << 16;

// Closes a descriptor on every path out of a read, including a throwing Reserve().
class Descriptor final {
 public:
  explicit Descriptor(int fd) noexcept : fd_(fd) {}
  ~Descriptor() {
    if (fd_ >= 0) close(fd_);
  }
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;
  int get() const noexcept { return fd_; }

 private:
  int fd_;
};

// TryLoad's own buffer: malloc/realloc, so nothing is zero-filled before the read
// overwrites it and growing may extend the block in place.
class HeapBuffer final : public ReadBuffer {
 public:
  HeapBuffer() = default;
  HeapBuffer(const HeapBuffer&) = delete;
  HeapBuffer& operator=(const HeapBuffer&) = delete;
  ~HeapBuffer() override { std::free(data_); }

  char* Reserve(std::size_t capacity, std::size_t /*keep: realloc keeps everything*/) override {
    void* grown = std::realloc(data_, capacity);
    if (grown == nullptr) throw std::bad_alloc();
    data_ = static_cast<char*>(grown);
    return data_;
  }

 private:
  char* data_ = nullptr;
};

// TryRead's buffer: the std::string it returns (resize keeps the contents).
struct StringBuffer final : public ReadBuffer {
  char* Reserve(std::size_t capacity, std::size_t /*keep*/) override {
    data.resize(capacity);
    return &data[0];
  }
  std::string data;
};

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
  StringBuffer buffer;
  const std::optional<std::size_t> size = TryReadInto(buffer);
  if (!size) return std::nullopt;
  buffer.data.resize(*size);
  return std::optional<std::string>(std::move(buffer.data));
}

std::optional<std::size_t> RuntimeCacheFile::TryReadInto(ReadBuffer& buffer) const noexcept {
  const char* data = nullptr;
  return ReadInto(buffer, &data);
}

std::optional<std::size_t> RuntimeCacheFile::ReadInto(ReadBuffer& buffer,
                                                      const char** data) const noexcept {
  try {
    if (RefuseSymlink("loading")) return std::nullopt;
    if (!Exists(path_)) return std::nullopt;  // no lock file created just to find nothing
    util::FileLock lock(lock_path_, util::LockMode::kShared);
    if (!lock.try_lock_for(lock_timeout_)) {
      LogWarning("runtime cache: could not lock " + lock_path_ + " within " +
                 Seconds(lock_timeout_) + " s; starting with an empty cache");
      return std::nullopt;
    }
    const Descriptor fd(open(path_.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) {
      if (errno == ENOENT) return std::nullopt;
      ThrowErrno("open " + path_);
    }
    // One buffer of the fstat size plus a spare byte, filled by read(2) straight from the
    // page cache: the usual file takes one read that returns its size and one that
    // returns 0. A read that fills the spare byte means the file grew since fstat; then
    // grow the same buffer and keep reading until end of file, as the Python runtime does.
    struct stat info;
    std::size_t capacity = 1;
    if (fstat(fd.get(), &info) == 0 && info.st_size > 0) {
      capacity += static_cast<std::size_t>(info.st_size);
    }
    char* out = buffer.Reserve(capacity, 0);
    std::size_t used = 0;
    while (true) {
      if (used == capacity) {
        capacity += std::max(capacity / 2, kMinGrowth);
        out = buffer.Reserve(capacity, used);
      }
      const ssize_t n = read(fd.get(), out + used, capacity - used);
      if (n == 0) break;
      if (n < 0) {
        if (errno == EINTR) continue;
        ThrowErrno("read " + path_);
      }
      used += static_cast<std::size_t>(n);
    }
    *data = out;
    return used;
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
  HeapBuffer buffer;
  return TryLoad(buffer, deserialize);
}

bool RuntimeCacheFile::TryLoad(
    ReadBuffer& buffer,
    const std::function<bool(const void*, std::size_t)>& deserialize) const noexcept {
  const char* data = nullptr;
  const std::optional<std::size_t> size = ReadInto(buffer, &data);
  if (!size) return false;
  std::string reason = "rejected by the runtime (corrupt, truncated, or from another GPU/version)";
  bool ok = false;
  try {
    ok = deserialize(data, *size);
  } catch (const std::exception& e) {
    reason = e.what();
  } catch (...) {
    reason = "unknown exception";
  }
  if (!ok) {
    LogWarning("runtime cache: cannot use " + path_ + " (" + std::to_string(*size) +
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
  const int fd = mkostemps(&temp[0], static_cast<int>(std::char_traits<char>::length(kTempSuffix)),
                           O_CLOEXEC);
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
