#include "core/runtime/runtime_cache_file.h"

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <exception>
#include <memory>
#include <stdexcept>
#include <utility>

#include "core/definitions/cache_protocol.h"
#include "core/runtime/cache_file_io.h"
#include "core/runtime/log.h"

namespace torch_tensorrt_rtx {
namespace runtime {
namespace {

constexpr std::size_t kCopyChunk = std::size_t{1} << 22;

std::string Seconds(std::chrono::milliseconds ms) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f", static_cast<double>(ms.count()) / 1000.0);
  return buf;
}

std::string CheckedPath(std::string path) {
  if (path.empty()) {
    throw std::invalid_argument("runtime cache path is empty; expected a file path");
  }
  if (path.find('\0') != std::string::npos) {
    throw std::invalid_argument("runtime cache path '" + std::string(path.c_str()) +
                                "...' contains a NUL character; expected a file path");
  }
  return io::AbsolutePath(path);
}

std::vector<container::Entry> ReadIndex(const io::ReadableFile& file) {
  char header[container::kHeaderSize];
  const std::size_t available =
      file.size() < container::kHeaderSize ? static_cast<std::size_t>(file.size()) : container::kHeaderSize;
  file.ReadAt(0, header, available);
  const std::uint32_t count = container::ParseHeader(header, available, file.size());
  if (file.size() == 0) return {};
  std::string index(std::size_t{count} * container::kIndexEntrySize, '\0');
  file.ReadAt(container::kHeaderSize, &index[0], index.size());
  return container::ParseIndex(index.data(), index.size(), count, file.size());
}

}  // namespace

std::uint64_t MaxBytesFromEnv() {
  const char* text = std::getenv(protocol::kMaxBytesEnv);
  if (text == nullptr || text[0] == '\0') return protocol::kDefaultMaxBytes;
  // Decimal digits only, exactly as the Python runtime accepts them.
  std::uint64_t value = 0;
  bool ok = true;
  for (const char* p = text; *p != '\0' && ok; ++p) {
    ok = *p >= '0' && *p <= '9' && value <= (UINT64_MAX - 9) / 10;
    value = value * 10 + static_cast<std::uint64_t>(*p - '0');
  }
  if (ok && value > 0) return value;
  LogWarning(std::string("runtime cache: ignoring ") + protocol::kMaxBytesEnv + "='" + text +
             "' (expected a positive number of bytes); using " +
             std::to_string(protocol::kDefaultMaxBytes));
  return protocol::kDefaultMaxBytes;
}

RuntimeCacheFile::RuntimeCacheFile(std::string path, std::chrono::milliseconds lock_timeout,
                                   std::optional<std::uint64_t> max_bytes)
    : path_(CheckedPath(std::move(path))),
      lock_path_(util::LockPathFor(path_)),
      lock_timeout_(lock_timeout),
      max_bytes_(max_bytes ? *max_bytes : MaxBytesFromEnv()) {
  if (max_bytes_ == 0) throw std::invalid_argument("runtime cache max_bytes must be positive");
}

template <typename Result, typename Read>
std::optional<Result> RuntimeCacheFile::UnderSharedLock(const char* action, Read read) const noexcept {
  try {
    if (!io::Exists(path_)) return std::nullopt;  // no lock file created just to find nothing
    // Before the lock file is opened at all: a directory other users can write may hold anything.
    io::CheckDirectoryTrusted(io::DirName(path_));
    std::unique_ptr<util::FileLock> lock;
    try {
      lock = std::make_unique<util::FileLock>(lock_path_, util::LockMode::kShared);
    } catch (const util::FileLockError& e) {
      // No lock file, and none can be created here (a read-only image): then nobody can
      // write the cache either, so it is read without a lock.
      if (io::Exists(lock_path_) || io::IsSymlink(lock_path_)) throw io::CacheFileRefused(e.what());
    }
    if (lock != nullptr && !lock->try_lock_for(lock_timeout_)) {
      LogWarning("runtime cache: could not lock " + lock_path_ + " within " + Seconds(lock_timeout_) +
                 " s; starting with an empty cache");
      return std::nullopt;
    }
    std::optional<io::ReadableFile> file = io::ReadableFile::Open(path_, max_bytes_);
    if (!file) return std::nullopt;
    return read(*file);
  } catch (const io::CacheFileRefused& e) {
    LogWarning(std::string("runtime cache: not ") + action + " " + path_ + ": " + e.what());
  } catch (const container::ContainerError& e) {
    LogWarning(std::string("runtime cache: not ") + action + " " + path_ + ": " + e.what() +
               "; starting with an empty cache");
  } catch (const std::exception& e) {
    LogWarning("runtime cache: cannot read " + path_ + " (" + e.what() +
               "); starting with an empty cache");
  } catch (...) {
    LogWarning("runtime cache: cannot read " + path_ + "; starting with an empty cache");
  }
  return std::nullopt;
}

std::optional<CachedEntry> RuntimeCacheFile::TryLoadEntry(const EngineKey& key) const noexcept {
  std::optional<std::optional<CachedEntry>> found = UnderSharedLock<std::optional<CachedEntry>>(
      "loading", [&](const io::ReadableFile& file) -> std::optional<CachedEntry> {
        for (const container::Entry& entry : ReadIndex(file)) {
          if (entry.key != key) continue;
          CachedEntry out;
          out.data.resize(static_cast<std::size_t>(entry.size));
          file.ReadAt(entry.offset, &out.data[0], out.data.size());
          out.last_use = entry.last_use;
          return out;
        }
        LogDebug("runtime cache: no entry for engine " + KeyPrefixHex(key) + " in " + path_);
        return std::nullopt;
      });
  return found ? std::move(*found) : std::nullopt;
}

std::optional<CachedEntry> RuntimeCacheFile::TryLoad(
    const EngineKey& key,
    const std::function<bool(const void*, std::size_t)>& deserialize) const noexcept {
  std::optional<CachedEntry> entry = TryLoadEntry(key);
  if (!entry) return std::nullopt;
  std::string reason = "rejected by the runtime";
  bool ok = false;
  try {
    ok = deserialize(entry->data.data(), entry->data.size());
  } catch (const std::exception& e) {
    reason = e.what();
  } catch (...) {
    reason = "unknown exception";
  }
  if (!ok) {
    LogWarning("runtime cache: cannot use the entry for engine " + KeyPrefixHex(key) + " in " +
               path_ + " (" + std::to_string(entry->data.size()) + " bytes): " + reason +
               " (other GPU or TensorRT-RTX version?); starting with an empty cache");
    return std::nullopt;
  }
  return entry;
}

std::optional<std::vector<container::Entry>> RuntimeCacheFile::TryReadIndex() const noexcept {
  return UnderSharedLock<std::vector<container::Entry>>(
      "reading", [](const io::ReadableFile& file) { return ReadIndex(file); });
}

bool RuntimeCacheFile::TrySaveEntry(const EngineKey& key, const void* data, std::size_t size,
                                    std::optional<std::uint64_t> now) const noexcept {
  if (data == nullptr || size == 0) {
    LogDebug("runtime cache: nothing to save to " + path_);
    return false;
  }
  if (container::FileSizeOf({size}) > max_bytes_) {
    LogWarning("runtime cache: the entry for engine " + KeyPrefixHex(key) + " (" +
               std::to_string(size) + " bytes) alone exceeds the cache size cap of " +
               std::to_string(max_bytes_) + " bytes (" + protocol::kMaxBytesEnv + "); " + path_ +
               " left untouched");
    return false;
  }
  try {
    if (io::IsSymlink(path_) || io::IsSymlink(lock_path_)) {
      throw io::CacheFileRefused(
          "a symlink is at the cache or lock path (expected a regular file); set the cache "
          "path to the link's target instead");
    }
    io::MakePrivateDirs(io::DirName(path_));
    io::CheckDirectoryTrusted(io::DirName(path_));
    util::FileLock lock(lock_path_, util::LockMode::kExclusive);
    if (!lock.try_lock_for(lock_timeout_)) {
      LogWarning("runtime cache: could not lock " + lock_path_ + " within " + Seconds(lock_timeout_) +
                 " s; " + path_ + " left untouched");
      return false;
    }
    SaveUnderLock(key, static_cast<const char*>(data), size,
                  now ? *now : static_cast<std::uint64_t>(std::time(nullptr)));
    return true;
  } catch (const io::CacheFileRefused& e) {
    LogWarning("runtime cache: not saving to " + path_ + ": " + e.what() + "; file left untouched");
  } catch (const std::exception& e) {
    LogWarning("runtime cache: cannot write " + path_ + " (" + e.what() + "); file left untouched");
  } catch (...) {
    LogWarning("runtime cache: cannot write " + path_ + "; file left untouched");
  }
  return false;
}

void RuntimeCacheFile::SaveUnderLock(const EngineKey& key, const char* data, std::size_t size,
                                     std::uint64_t now) const {
  io::RemoveStaleTempFiles(path_);
  std::optional<io::ReadableFile> old = io::ReadableFile::Open(path_, std::nullopt);
  std::vector<container::Entry> entries;
  if (old) {
    try {
      entries = ReadIndex(*old);
    } catch (const container::ContainerError& e) {
      if (e.verdict() != container::Verdict::kCorrupt) {
        throw io::CacheFileRefused(std::string(e.what()) +
                                   "; move it away or choose another cache path");
      }
      LogWarning("runtime cache: " + path_ + " is a damaged cache (" + e.what() + "); replacing it");
    }
  }
  std::vector<container::Entry> kept = container::EntriesToKeep(entries, key, size, max_bytes_);
  std::size_t others = 0;
  for (const container::Entry& e : entries) others += e.key != key;
  if (kept.size() < others) {
    LogInfo("runtime cache: evicting " + std::to_string(others - kept.size()) +
            " least recently used entries from " + path_ + " to stay under " +
            std::to_string(max_bytes_) + " bytes");
  }
  std::vector<container::Entry> index = kept;
  container::Entry own;
  own.key = key;
  own.last_use = now;
  own.size = size;
  index.push_back(own);
  io::TempFile temp = io::TempFile::CreateBeside(path_);
  const std::string prefix = container::EncodePrefix(index);
  temp.Write(prefix.data(), prefix.size());
  std::string chunk;
  for (const container::Entry& entry : kept) {
    for (std::uint64_t done = 0; done < entry.size;) {
      const std::size_t step = static_cast<std::size_t>(
          entry.size - done < kCopyChunk ? entry.size - done : kCopyChunk);
      chunk.resize(step);
      old->ReadAt(entry.offset + done, &chunk[0], step);
      temp.Write(chunk.data(), step);
      done += step;
    }
  }
  temp.Write(data, size);
  if (old) old->Close();  // Windows cannot replace a file that is still open
  temp.CommitTo(path_);
}

}  // namespace runtime
}  // namespace torch_tensorrt_rtx
