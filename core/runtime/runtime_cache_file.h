// RuntimeCacheFile: the runtime cache file store, shared safely by many processes (C++
// and Python runtimes) -- the C++ twin of torch_tensorrt_rtx.runtime.RuntimeCacheFile,
// implementing the same file protocol step for step (DESIGN.md, "The cache file protocol").
//
// Example:
//
//   RuntimeCacheFile store("/home/me/.cache/torch_tensorrt_rtx/runtime_cache.bin");
//   store.TryLoad([&](const void* p, size_t n) { return cache.Deserialize(p, n); });
//   ...
//   store.TrySave([&] { return cache.Serialize(); });     // never throws
//
// Contract:
//  - Lock file "<path>.lock" through util::FileLock (flock(2); LockFileEx on Windows),
//    default timeout 10 s polled every 50 ms. The lock file is never deleted.
//  - Load: missing file -> false with no lock file created. Otherwise read the whole
//    file under a SHARED lock (several C++ readers at once; Python's exclusive filelock
//    excludes them), release, then deserialize. Rejected bytes -> warning, false.
//  - Save: serialize first, outside the lock; an empty or failed serialization is never
//    written. Create missing parent directories (0700). Under the EXCLUSIVE lock: delete
//    stale "<name>.<random>.tmp" files (temp files live only while their writer holds the lock,
//    so these belong to killed writers), write a uniquely named temp file
//    "<name>.XXXXXX.tmp" in the same directory, fsync, rename over the cache, fsync the
//    directory.
//  - Lock timeout or I/O error -> warning, false, the cache file untouched. A symlink at
//    the cache or lock path is refused with a warning. The Try* methods never throw.
//  - Reads go straight into one buffer sized from fstat (plus one spare byte, so a file
//    that grew after fstat is noticed without an extra buffer); a caller that wants the
//    bytes in its own object (a Python bytes) passes a ReadBuffer and gets no copy.
#ifndef TORCH_TENSORRT_RTX_CORE_RUNTIME_RUNTIME_CACHE_FILE_H_
#define TORCH_TENSORRT_RTX_CORE_RUNTIME_RUNTIME_CACHE_FILE_H_

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>

#include "core/util/file_lock.h"

namespace torch_tensorrt_rtx {
namespace runtime {

// Storage a load reads the file into, so the bytes land in the caller's final object.
// Reserve() is called while the shared lock is held: it must not wait for anything a
// lock holder elsewhere may be waiting for (another lock, the Python GIL).
//
//   class VectorBuffer final : public ReadBuffer {
//     char* Reserve(std::size_t capacity, std::size_t) override {
//       v.resize(capacity);  // keeps the contents
//       return v.data();
//     }
//     std::vector<char> v;
//   };
class ReadBuffer {
 public:
  virtual ~ReadBuffer() = default;
  // Storage for at least `capacity` bytes whose first `keep` bytes equal the first `keep`
  // bytes of the storage returned by the previous call (keep is 0 on the first call).
  // May throw (e.g. std::bad_alloc); the load then fails with a warning.
  virtual char* Reserve(std::size_t capacity, std::size_t keep) = 0;
};

class RuntimeCacheFile final {
 public:
  explicit RuntimeCacheFile(std::string path,
                            std::chrono::milliseconds lock_timeout = util::kDefaultLockTimeout);

  const std::string& path() const noexcept { return path_; }
  const std::string& lock_path() const noexcept { return lock_path_; }
  std::chrono::milliseconds lock_timeout() const noexcept { return lock_timeout_; }

  // The whole file, read under the shared lock; nullopt if missing, refused or unreadable.
  std::optional<std::string> TryRead() const noexcept;
  // The same into `buffer`: the file's size (its bytes are the first ones of the storage
  // `buffer` handed out last), or nullopt if missing, refused or unreadable.
  std::optional<std::size_t> TryReadInto(ReadBuffer& buffer) const noexcept;
  // Reads and hands the bytes to `deserialize`; true if it accepted them. The first form
  // reads into a private heap buffer, the second into `buffer`.
  bool TryLoad(const std::function<bool(const void*, std::size_t)>& deserialize) const noexcept;
  bool TryLoad(ReadBuffer& buffer,
               const std::function<bool(const void*, std::size_t)>& deserialize) const noexcept;
  // Serializes (outside the lock), then atomically replaces the file; true if written.
  bool TrySave(const std::function<std::string()>& serialize) const noexcept;
  bool TrySaveBytes(const void* data, std::size_t size) const noexcept;

 private:
  bool RefuseSymlink(const char* action) const noexcept;
  // TryReadInto, also giving where the bytes are (valid while `buffer` is unchanged).
  std::optional<std::size_t> ReadInto(ReadBuffer& buffer, const char** data) const noexcept;
  // Throws std::system_error on an I/O error.
  void ReplaceUnderLock(const void* data, std::size_t size) const;

  std::string path_;
  std::string lock_path_;
  std::chrono::milliseconds lock_timeout_;
};

}  // namespace runtime
}  // namespace torch_tensorrt_rtx

#endif  // TORCH_TENSORRT_RTX_CORE_RUNTIME_RUNTIME_CACHE_FILE_H_
