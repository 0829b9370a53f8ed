// The runtime cache container: one file holding every engine's runtime cache, one entry
// per engine keyed by the SHA-256 of its serialized engine. Pure functions on bytes (no
// I/O); the byte layout is defined once in py/torch_tensorrt_rtx/runtime/definitions.toml
// and implemented identically by the Python runtime (runtime/cache_container.py).
//
// Example (what RuntimeCacheFile does under the exclusive lock):
//
//   std::uint32_t count = ParseHeader(first16, file_size);        // throws ContainerError
//   std::vector<Entry> index = ParseIndex(index_bytes, count, file_size);
//   std::vector<Entry> kept = EntriesToKeep(index, key, blob_size, max_bytes);
//   std::string prefix = EncodePrefix(kept_plus_own);             // then the entries' bytes
//
// Contract: a file is "empty" (0 bytes), a "container", "foreign" (not ours: never
// overwritten), "version" (ours, another format version: never overwritten) or
// "corrupt" (ours, inconsistent: not loaded, replaced by the next save). The verdicts and
// the eviction order are the Python module's, byte for byte (tests/py/cross_runtime).
#ifndef TORCH_TENSORRT_RTX_CORE_RUNTIME_CACHE_CONTAINER_H_
#define TORCH_TENSORRT_RTX_CORE_RUNTIME_CACHE_CONTAINER_H_

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/runtime/sha256.h"

namespace torch_tensorrt_rtx {
namespace runtime {
namespace container {

constexpr std::size_t kHeaderSize = 16;      // magic[8], version u32, count u32
constexpr std::size_t kIndexEntrySize = 48;  // key[32], last use u64, size u64

enum class Verdict { kEmpty, kContainer, kForeign, kVersion, kCorrupt };
const char* Name(Verdict verdict);

class ContainerError : public std::runtime_error {
 public:
  ContainerError(Verdict verdict, const std::string& reason)
      : std::runtime_error(reason), verdict_(verdict) {}
  Verdict verdict() const noexcept { return verdict_; }

 private:
  Verdict verdict_;
};

struct Entry {
  EngineKey key{};
  std::uint64_t last_use = 0;  // Unix seconds of the entry's last save
  std::uint64_t size = 0;
  std::uint64_t offset = 0;  // where its bytes start in the file
};

// The entry count, from the first min(kHeaderSize, file_size) bytes. Throws ContainerError.
std::uint32_t ParseHeader(const char* first, std::size_t available, std::uint64_t file_size);
// The entries of the index (exactly count * kIndexEntrySize bytes). Throws ContainerError.
std::vector<Entry> ParseIndex(const char* index, std::size_t size, std::uint32_t count,
                              std::uint64_t file_size);
// Verdict and entries of a whole file in memory (tests, fuzzing, tools).
Verdict Decode(const char* data, std::size_t size, std::vector<Entry>* entries);

std::uint64_t FileSizeOf(const std::vector<std::uint64_t>& sizes);
// The other engines' entries that stay beside a new entry of `own_size` bytes: least
// recently used out first (ties: earlier index position first) until the file fits in
// `max_bytes` and the index in kMaxEntries. File order is kept.
std::vector<Entry> EntriesToKeep(const std::vector<Entry>& entries, const EngineKey& own_key,
                                 std::uint64_t own_size, std::uint64_t max_bytes);
// Header and index for `entries` (key, last_use, size; offsets ignored).
std::string EncodePrefix(const std::vector<Entry>& entries);

}  // namespace container
}  // namespace runtime
}  // namespace torch_tensorrt_rtx

#endif  // TORCH_TENSORRT_RTX_CORE_RUNTIME_CACHE_CONTAINER_H_
