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

// The reasons a warning is reported for, once per cache path and reason (the Python store's).
constexpr const char* kLockTimeout = "lock timeout";
constexpr const char* kRefused = "refused";
constexpr const char* kNotOurContainer = "not our container";
constexpr const char* kUnusable = "unusable";
constexpr const char* kDamaged = "damaged";
constexpr const char* kOverCap = "entry over the size cap";
constexpr const char* kUnusableEntry = "unusable entry";

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

container::Index ReadIndex(const io::ReadableFile& file) {
  char header[container::kHeaderSize];
  const std::size_t available =
      file.size() < container::kHeaderSize ? static_cast<std::size_t>(file.size()) : container::kHeaderSize;
  file.ReadAt(0, header, available);
  const container::Header parsed = container::ParseHeader(header, available, file.size());
  if (file.size() == 0) return {};
  std::string index(container::IndexBytes(parsed, file.size()), '\0');
  file.ReadAt(container::kHeaderSize, &index[0], index.size());
  return container::ParseIndex(index.data(), index.size(), parsed, file.size());
}

// The entry's bytes, chunk by chunk, to `sink` (if any); their CRC-32.
std::uint32_t ReadRange(const io::ReadableFile& file, const container::Entry& entry, io::TempFile* sink) {
  std::string chunk;
  std::uint32_t crc = 0;
  for (std::uint64_t done = 0; done < entry.size;) {
    const std::size_t step =
        static_cast<std::size_t>(entry.size - done < kCopyChunk ? entry.size - done : kCopyChunk);
    chunk.resize(step);
    file.ReadAt(entry.offset + done, &chunk[0], step);
    if (sink != nullptr) sink->Write(chunk.data(), step);
    crc = container::Checksum(chunk.data(), step, crc);
    done += step;
  }
  return crc;
}

std::string Outcome(bool load, const std::string& path) {
  return load ? "starting with an empty cache (" + path + " untouched)" : path + " left untouched";
}

}  // namespace

std::uint64_t MaxBytesFromEnv() {
  const char* text = std::getenv(protocol::kMaxBytesEnv);
  if (text == nullptr || text[0] == '\0') return protocol::kDefaultMaxBytes;
  // Decimal digits only, exactly as the Python runtime accepts them.
  std::uint64_t value = 0;
  bool ok = true;
  for (const char* p = text; *p != '\0' && ok; ++p) {
    const std::uint64_t digit = static_cast<std::uint64_t>(*p - '0');
    ok = *p >= '0' && *p <= '9' && value <= (UINT64_MAX - digit) / 10;  // accepted up to 2^64 - 1
    value = value * 10 + digit;
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
  if (lock_timeout_.count() < 0) {
    // One meaning in both runtimes and both operations: a negative timeout is refused, never
    // "wait forever" for one operation and "give up at once" for another.
    throw std::invalid_argument("runtime cache lock_timeout must be >= 0 seconds, found " +
                                std::to_string(lock_timeout_.count() / 1000.0));
  }
}

void RuntimeCacheFile::Warn(const char* kind, const std::string& text) const noexcept {
  ReportCacheWarning(path_, kind, "runtime cache: " + text);
}

template <typename Result, typename Work>
std::optional<Result> RuntimeCacheFile::UnderLock(bool shared, const char* action, Work work) const noexcept {
  try {
    if (shared && !io::Exists(path_)) return std::nullopt;  // no lock file created just to find nothing
    if (!shared) {
      if (io::IsSymlink(path_) || io::IsSymlink(lock_path_)) {
        throw io::CacheFileRefused(
            "a symlink is at the cache or lock path (expected a regular file); set the cache "
            "path to the link's target instead");
      }
      io::MakePrivateDirs(io::DirName(path_));
    }
    // Once, before the lock file is opened at all: a directory other users can write may hold anything.
    io::CheckDirectoryTrusted(io::DirName(path_));
    std::unique_ptr<util::FileLock> lock;
    try {
      lock = std::make_unique<util::FileLock>(lock_path_,
                                              shared ? util::LockMode::kShared : util::LockMode::kExclusive);
    } catch (const util::FileLockError& e) {
      // No lock file, and none can be created here (a read-only image): then nobody can
      // write the cache either, so it is read without a lock.
      if (!shared || io::Exists(lock_path_) || io::IsSymlink(lock_path_)) throw io::CacheFileRefused(e.what());
    }
    if (lock != nullptr && !lock->try_lock_for(lock_timeout_)) {
      Warn(kLockTimeout, "could not lock " + lock_path_ + " within " + Seconds(lock_timeout_) + " s; " +
                             Outcome(shared, path_));
      return std::nullopt;
    }
    return work();
  } catch (const io::CacheFileRefused& e) {
    Warn(kRefused, std::string("not ") + action + " " + path_ + ": " + e.what());
  } catch (const container::ContainerError& e) {
    Warn(kNotOurContainer,
         std::string("not ") + action + " " + path_ + ": " + e.what() + "; " + Outcome(shared, path_));
  } catch (const std::exception& e) {
    Warn(kUnusable, std::string("cannot ") + (shared ? "read " : "write ") + path_ + " (" + e.what() + "); " +
                        Outcome(shared, path_));
  } catch (...) {
    Warn(kUnusable, std::string("cannot ") + (shared ? "read " : "write ") + path_ + " (unknown exception); " +
                        Outcome(shared, path_));
  }
  return std::nullopt;
}

std::optional<std::uint64_t> RuntimeCacheFile::TryLoadEntryInto(
    const EngineKey& key, const std::function<char*(std::size_t)>& allocate) const noexcept {
  std::optional<std::optional<std::uint64_t>> found = UnderLock<std::optional<std::uint64_t>>(
      true, "loading", [&]() -> std::optional<std::uint64_t> {
        std::optional<io::ReadableFile> file = io::ReadableFile::Open(path_, max_bytes_);
        if (!file) return std::nullopt;
        const container::Index index = ReadIndex(*file);
        if (!index.damage.empty()) {
          Warn(kDamaged, path_ + " is damaged (" + index.damage + "); using its intact entries only");
        }
        for (const container::Entry& entry : index.entries) {
          if (entry.key != key) continue;
          char* out = allocate(static_cast<std::size_t>(entry.size));
          file->ReadAt(entry.offset, out, static_cast<std::size_t>(entry.size));
          if (entry.checksum && container::Checksum(out, static_cast<std::size_t>(entry.size)) != *entry.checksum) {
            Warn(kDamaged, "the entry for engine " + KeyPrefixHex(key) + " in " + path_ +
                               " is damaged (checksum mismatch); starting with an empty cache");
            return std::nullopt;
          }
          return entry.last_use;
        }
        LogDebug("runtime cache: no entry for engine " + KeyPrefixHex(key) + " in " + path_);
        return std::nullopt;
      });
  return found ? *found : std::nullopt;
}

std::optional<CachedEntry> RuntimeCacheFile::TryLoadEntry(const EngineKey& key) const noexcept {
  CachedEntry out;
  const std::optional<std::uint64_t> last_use = TryLoadEntryInto(key, [&out](std::size_t size) {
    out.data.resize(size);
    return &out.data[0];
  });
  if (!last_use) return std::nullopt;
  out.last_use = *last_use;
  return out;
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
    Warn(kUnusableEntry, "cannot use the entry for engine " + KeyPrefixHex(key) + " in " + path_ + " (" +
                             std::to_string(entry->data.size()) + " bytes): " + reason +
                             " (other GPU or TensorRT-RTX version?); starting with an empty cache");
    return std::nullopt;
  }
  return entry;
}

std::optional<std::vector<container::Entry>> RuntimeCacheFile::TryReadIndex() const noexcept {
  using Entries = std::vector<container::Entry>;
  return UnderLock<Entries>(true, "reading", [&]() -> std::optional<Entries> {
    std::optional<io::ReadableFile> file = io::ReadableFile::Open(path_, max_bytes_);
    if (!file) return std::nullopt;
    return ReadIndex(*file).entries;
  });
}

bool RuntimeCacheFile::TrySaveEntry(const EngineKey& key, const void* data, std::size_t size,
                                    std::optional<std::uint64_t> now) const noexcept {
  if (data == nullptr || size == 0) {
    LogDebug("runtime cache: nothing to save to " + path_);
    return false;
  }
  if (container::FileSizeOf({size}) > max_bytes_) {
    Warn(kOverCap, "the entry for engine " + KeyPrefixHex(key) + " (" + std::to_string(size) +
                       " bytes) alone exceeds the cache size cap of " + std::to_string(max_bytes_) + " bytes (" +
                       protocol::kMaxBytesEnv + "); " + path_ + " left untouched");
    return false;
  }
  const std::uint64_t when = now ? *now : static_cast<std::uint64_t>(std::time(nullptr));
  return UnderLock<bool>(false, "saving", [&]() -> std::optional<bool> {
           SaveUnderLock(key, static_cast<const char*>(data), size, when);
           return true;
         }).value_or(false);
}

void RuntimeCacheFile::SaveUnderLock(const EngineKey& key, const char* data, std::size_t size,
                                     std::uint64_t now) const {
  io::RemoveStaleTempFiles(path_);
  std::optional<io::ReadableFile> old = io::ReadableFile::Open(path_, std::nullopt);
  std::vector<container::Entry> entries;
  if (old) {
    container::Index index;
    try {
      index = ReadIndex(*old);
    } catch (const container::ContainerError& e) {
      if (e.verdict() != container::Verdict::kCorrupt) {
        throw io::CacheFileRefused(std::string(e.what()) + "; move it away or choose another cache path");
      }
      index.damage = e.what();
    }
    if (!index.damage.empty()) {
      Warn(kDamaged, path_ + " is damaged (" + index.damage + "); keeping its " +
                         std::to_string(index.entries.size()) + " intact entries");
    }
    entries = std::move(index.entries);
  }
  std::vector<container::Entry> kept = container::EntriesToKeep(entries, key, size, max_bytes_);
  std::size_t others = 0;
  for (const container::Entry& e : entries) others += e.key != key;
  if (kept.size() < others) {
    LogInfo("runtime cache: evicting " + std::to_string(others - kept.size()) +
            " least recently used entries from " + path_ + " to stay under " +
            std::to_string(max_bytes_) + " bytes");
  }
  // A version-1 entry has no checksum yet: computed from its bytes (the migration).
  for (container::Entry& e : kept) {
    if (!e.checksum) e.checksum = ReadRange(*old, e, nullptr);
  }
  container::Entry own;
  own.key = key;
  own.last_use = now;
  own.size = size;
  own.checksum = container::Checksum(data, size);
  while (!WriteAndReplace(old, kept, own, data)) {
  }  // a damaged entry was dropped from `kept`: written again without it
}

bool RuntimeCacheFile::WriteAndReplace(std::optional<io::ReadableFile>& old, std::vector<container::Entry>& kept,
                                       const container::Entry& own, const char* data) const {
  std::vector<container::Entry> index = kept;
  index.push_back(own);
  io::TempFile temp = io::TempFile::CreateBeside(path_);  // deleted unless committed
  const std::string prefix = container::EncodePrefix(index);
  temp.Write(prefix.data(), prefix.size());
  for (std::size_t i = 0; i < kept.size(); ++i) {
    if (ReadRange(*old, kept[i], &temp) != *kept[i].checksum) {
      Warn(kDamaged, "the entry for engine " + KeyPrefixHex(kept[i].key) + " in " + path_ +
                         " is damaged (checksum mismatch); dropping it");
      kept.erase(kept.begin() + static_cast<std::ptrdiff_t>(i));
      return false;
    }
  }
  temp.Write(data, static_cast<std::size_t>(own.size));
  if (old) old->Close();  // Windows cannot replace a file that is still open
  temp.CommitTo(path_);
  return true;
}

}  // namespace runtime
}  // namespace torch_tensorrt_rtx
