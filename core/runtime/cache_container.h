// The runtime cache container: one file holding every engine's runtime cache, one entry
// per engine keyed by the SHA-256 of its serialized engine. Pure functions on bytes (no
// I/O); the byte layout is defined once in py/torch_tensorrt_rtx/runtime/definitions.toml
// and implemented identically by the Python runtime (runtime/cache_container.py).
//
// Example (what RuntimeCacheFile does under the exclusive lock):
//
//   Header header = ParseHeader(first16, available, file_size);   // throws ContainerError
//   Index index = ParseIndex(index_bytes, IndexBytes(header, file_size), header, file_size);
//   std::vector<Entry> kept = EntriesToKeep(index.entries, key, blob_size, max_bytes);
//   std::string prefix = EncodePrefix(kept_plus_own);   // then the entries' bytes
//
// Contract: a file is "empty" (0 bytes), a "container", "foreign" (not ours: never
// overwritten), "version" (ours, a version this runtime does not read: never overwritten)
// or "corrupt" (ours, damaged: only the entries whose index record and bytes are intact are
// used, and the next save keeps exactly those). Version 2 (written) gives every entry its
// offset and CRC-32s of its bytes and its record; version 1 (read, migrated by a save) has
// neither, and any inconsistency makes it wholly corrupt. The verdicts, the intact entries
// and the eviction order are the Python module's, byte for byte (tests/py/cross_runtime).
#ifndef TORCH_TENSORRT_RTX_CORE_RUNTIME_CACHE_CONTAINER_H_
#define TORCH_TENSORRT_RTX_CORE_RUNTIME_CACHE_CONTAINER_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/runtime/sha256.h"

namespace torch_tensorrt_rtx {
namespace runtime {
namespace container {

constexpr std::size_t kHeaderSize = 16;      // magic[8], version u32, count u32
constexpr std::size_t kIndexEntrySize = 64;  // key[32], last use, offset, size (u64), CRC-32 of data, of record

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

// CRC-32 (zlib's, IEEE 802.3) of `size` bytes, continuing from `previous`.
std::uint32_t Checksum(const void* data, std::size_t size, std::uint32_t previous = 0) noexcept;

struct Entry {
  EngineKey key{};
  std::uint64_t last_use = 0;  // Unix seconds of the entry's last save
  std::uint64_t size = 0;
  std::uint64_t offset = 0;  // where its bytes start in the file
  std::optional<std::uint32_t> checksum;  // CRC-32 of its bytes (none in a version-1 file)
};

struct Header {
  std::uint32_t version = 0;
  std::uint32_t count = 0;
};

struct Index {
  std::vector<Entry> entries;  // the intact ones, in index order
  std::string damage;          // "" for a consistent container, else the first problem found
};

// From the first min(kHeaderSize, file_size) bytes. Throws ContainerError (foreign, version,
// and for version 1 corrupt).
Header ParseHeader(const char* first, std::size_t available, std::uint64_t file_size);
// How many bytes after the header a reader passes to ParseIndex (version 2: up to
// kMaxEntries records that fit, whatever the count says).
std::size_t IndexBytes(const Header& header, std::uint64_t file_size);
// The intact entries of the index. Throws ContainerError for a corrupt version-1 index.
Index ParseIndex(const char* index, std::size_t size, const Header& header, std::uint64_t file_size);
// Verdict and intact entries (bytes checked too) of a whole file in memory (tests, fuzzing, tools).
Verdict Decode(const char* data, std::size_t size, std::vector<Entry>* entries);

std::uint64_t FileSizeOf(const std::vector<std::uint64_t>& sizes);
// The other engines' entries that stay beside a new entry of `own_size` bytes: least
// recently used out first (ties: earlier index position first) until the file fits in
// `max_bytes` and the index in kMaxEntries. File order is kept.
std::vector<Entry> EntriesToKeep(const std::vector<Entry>& entries, const EngineKey& own_key,
                                 std::uint64_t own_size, std::uint64_t max_bytes);
// Header and index for `entries` (key, last_use, size, checksum; offsets are computed).
// Throws std::invalid_argument for a size of 0, a missing checksum or more than kMaxEntries
// entries (keys are 32 bytes by type), with the Python module's text.
std::string EncodePrefix(const std::vector<Entry>& entries);

}  // namespace container
}  // namespace runtime
}  // namespace torch_tensorrt_rtx

#endif  // TORCH_TENSORRT_RTX_CORE_RUNTIME_CACHE_CONTAINER_H_
