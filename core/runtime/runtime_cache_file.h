// RuntimeCacheFile: the runtime cache file store. Many engines, processes and both
// runtimes share one cache file and keep every engine's JIT kernels: the file is a
// container (cache_container.h) of one entry per engine, keyed by the SHA-256 of the
// serialized engine. The Python runtime (torch_tensorrt_rtx.runtime.RuntimeCacheFile)
// implements the same protocol and writes the same bytes.
//
// Example:
//
//   RuntimeCacheFile store(DefaultCachePath());
//   const EngineKey key = Sha256(engine_bytes.data(), engine_bytes.size());
//   store.TryLoad(key, [&](const void* p, size_t n) { return cache.Deserialize(p, n); });
//   ...
//   store.TrySaveEntry(key, blob.data(), blob.size());     // never throws
//
// Contract:
//  - The path (made absolute) and the size cap are resolved once, by the constructor: a later
//    chdir or change of the environment does not move or resize the store. Keep one store
//    per cache path for both loads and saves.
//  - Lock file "<path>.lock" through util::FileLock (flock(2); LockFileEx on Windows),
//    default timeout 10 s polled every 50 ms. The lock file is never deleted. The
//    directory's trust is checked once per operation, before the lock file is opened.
//  - Load, under a SHARED lock on every platform (the lock file opened read-only where it
//    cannot be written; no lock where it neither exists nor can be created, since then
//    nobody can write the cache): header, index and this engine's entry only, whose
//    checksum is checked before the bytes reach the caller.
//  - Save, under the EXCLUSIVE lock: keep every other engine's intact entry (least recently
//    used ones go only when the size cap needs room; damaged ones are dropped), write a
//    uniquely named temp file beside the cache, fsync, rename over it, fsync the directory.
//    An empty or failed serialization is never written. A version-1 file is migrated.
//  - Refused with a warning, never overwritten: a symlink, FIFO or device at the path, a
//    file or directory other users can write, a file that is not our container or is of
//    another format version. A file above the size cap is not loaded.
//  - Lock timeout, I/O error or any other exception -> a warning (ReportCacheWarning: stderr
//    every time, the sink once per path and reason), the cache file untouched. The Try*
//    methods never throw. The constructor throws std::invalid_argument for an empty path,
//    one with a NUL character, a zero size cap or a negative timeout.
#ifndef TORCH_TENSORRT_RTX_CORE_RUNTIME_RUNTIME_CACHE_FILE_H_
#define TORCH_TENSORRT_RTX_CORE_RUNTIME_RUNTIME_CACHE_FILE_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/runtime/cache_container.h"
#include "core/runtime/cache_file_io.h"
#include "core/runtime/sha256.h"
#include "core/util/file_lock.h"

namespace torch_tensorrt_rtx {
namespace runtime {

struct CachedEntry {
  std::string data;
  std::uint64_t last_use = 0;  // Unix seconds of the entry's last save
};

// The size cap: $TORCH_TENSORRT_RTX_CACHE_MAX_BYTES if a positive integer, else 1 GiB.
std::uint64_t MaxBytesFromEnv();

class RuntimeCacheFile final {
 public:
  explicit RuntimeCacheFile(std::string path,
                            std::chrono::milliseconds lock_timeout = util::kDefaultLockTimeout,
                            std::optional<std::uint64_t> max_bytes = std::nullopt);

  const std::string& path() const noexcept { return path_; }
  const std::string& lock_path() const noexcept { return lock_path_; }
  std::chrono::milliseconds lock_timeout() const noexcept { return lock_timeout_; }
  std::uint64_t max_bytes() const noexcept { return max_bytes_; }

  // This engine's entry; nullopt if missing, refused, damaged or unreadable (warnings say why).
  std::optional<CachedEntry> TryLoadEntry(const EngineKey& key) const noexcept;
  // The same, read straight into the memory `allocate(size)` returns (no second copy); the
  // entry's last-use time, nullopt as above (the memory's content is then undefined).
  std::optional<std::uint64_t> TryLoadEntryInto(const EngineKey& key,
                                                const std::function<char*(std::size_t)>& allocate) const noexcept;
  // The entry, handed to `deserialize`; nullopt unless it accepted the bytes.
  std::optional<CachedEntry> TryLoad(
      const EngineKey& key,
      const std::function<bool(const void*, std::size_t)>& deserialize) const noexcept;
  // Every entry's key, last use and size; nullopt if unreadable.
  std::optional<std::vector<container::Entry>> TryReadIndex() const noexcept;
  // Replaces this engine's entry, keeping the others'; true if written. `now` is the
  // entry's last-use time (default: the clock).
  bool TrySaveEntry(const EngineKey& key, const void* data, std::size_t size,
                    std::optional<std::uint64_t> now = std::nullopt) const noexcept;

 private:
  template <typename Result, typename Work>
  std::optional<Result> UnderLock(bool shared, const char* action, Work work) const noexcept;
  void SaveUnderLock(const EngineKey& key, const char* data, std::size_t size,
                     std::uint64_t now) const;
  bool WriteAndReplace(std::optional<io::ReadableFile>& old, std::vector<container::Entry>& kept,
                       const container::Entry& own, const char* data) const;
  void Warn(const char* kind, const std::string& text) const noexcept;

  std::string path_;
  std::string lock_path_;
  std::chrono::milliseconds lock_timeout_;
  std::uint64_t max_bytes_;
};

}  // namespace runtime
}  // namespace torch_tensorrt_rtx

#endif  // TORCH_TENSORRT_RTX_CORE_RUNTIME_RUNTIME_CACHE_FILE_H_
