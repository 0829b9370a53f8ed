#include "core/runtime/cache_container.h"

#include <algorithm>
#include <cstring>
#include <numeric>
#include <set>
#include <utility>

#include "core/definitions/cache_protocol.h"

namespace torch_tensorrt_rtx {
namespace runtime {
namespace container {
namespace {

std::uint64_t LoadLE(const char* p, int bytes) {
  std::uint64_t value = 0;
  for (int i = bytes - 1; i >= 0; --i) value = (value << 8) | static_cast<unsigned char>(p[i]);
  return value;
}

void StoreLE(std::string& out, std::uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

constexpr std::size_t kMagicSize = 8;

}  // namespace

const char* Name(Verdict verdict) {
  switch (verdict) {
    case Verdict::kEmpty: return "empty";
    case Verdict::kContainer: return "container";
    case Verdict::kForeign: return "foreign";
    case Verdict::kVersion: return "version";
    case Verdict::kCorrupt: return "corrupt";
  }
  return "?";
}

std::uint32_t ParseHeader(const char* first, std::size_t available, std::uint64_t file_size) {
  if (file_size == 0) return 0;
  if (file_size < kHeaderSize || available < kHeaderSize ||
      std::memcmp(first, protocol::kContainerMagic, kMagicSize) != 0) {
    throw ContainerError(Verdict::kForeign,
                         std::string("not a runtime cache container (expected the magic '") +
                             protocol::kContainerMagic + "' in the first 8 bytes)");
  }
  const std::uint64_t version = LoadLE(first + 8, 4);
  const std::uint64_t count = LoadLE(first + 12, 4);
  if (version != protocol::kContainerVersion) {
    throw ContainerError(Verdict::kVersion, "container format version " + std::to_string(version) +
                                                ", this runtime reads version " +
                                                std::to_string(protocol::kContainerVersion));
  }
  if (count > protocol::kMaxEntries) {
    throw ContainerError(Verdict::kCorrupt, std::to_string(count) +
                                                " entries, more than the limit " +
                                                std::to_string(protocol::kMaxEntries));
  }
  if (kHeaderSize + count * kIndexEntrySize > file_size) {
    throw ContainerError(Verdict::kCorrupt, "an index of " + std::to_string(count) +
                                                " entries does not fit in " +
                                                std::to_string(file_size) + " bytes");
  }
  return static_cast<std::uint32_t>(count);
}

std::vector<Entry> ParseIndex(const char* index, std::size_t size, std::uint32_t count,
                              std::uint64_t file_size) {
  if (size != std::size_t{count} * kIndexEntrySize) {
    throw ContainerError(Verdict::kCorrupt, "index truncated: " + std::to_string(size) +
                                                " bytes for " + std::to_string(count) + " entries");
  }
  std::vector<Entry> entries;
  entries.reserve(count);
  std::set<EngineKey> seen;
  std::uint64_t offset = kHeaderSize + size;
  for (std::uint32_t i = 0; i < count; ++i) {
    const char* p = index + std::size_t{i} * kIndexEntrySize;
    Entry entry;
    std::memcpy(entry.key.data(), p, entry.key.size());
    entry.last_use = LoadLE(p + 32, 8);
    entry.size = LoadLE(p + 40, 8);
    entry.offset = offset;
    if (entry.size == 0 || !seen.insert(entry.key).second) {
      throw ContainerError(Verdict::kCorrupt,
                           "entry " + std::to_string(i) + " is empty or repeats a key");
    }
    // Compared without overflow: offset <= file_size holds on entry to every iteration.
    if (entry.size > file_size - offset) {
      throw ContainerError(Verdict::kCorrupt, "entry " + std::to_string(i) + " (" +
                                                  std::to_string(entry.size) + " bytes at " +
                                                  std::to_string(offset) +
                                                  ") runs past the end of the file (" +
                                                  std::to_string(file_size) + " bytes)");
    }
    offset += entry.size;
    entries.push_back(entry);
  }
  if (offset != file_size) {
    throw ContainerError(Verdict::kCorrupt,
                         std::to_string(file_size - offset) + " bytes after the last entry");
  }
  return entries;
}

Verdict Decode(const char* data, std::size_t size, std::vector<Entry>* entries) {
  try {
    const std::uint32_t count = ParseHeader(data, std::min(size, kHeaderSize), size);
    if (size == 0) return Verdict::kEmpty;
    std::vector<Entry> parsed =
        ParseIndex(data + kHeaderSize, std::size_t{count} * kIndexEntrySize, count, size);
    if (entries != nullptr) *entries = std::move(parsed);
    return Verdict::kContainer;
  } catch (const ContainerError& e) {
    return e.verdict();
  }
}

std::uint64_t FileSizeOf(const std::vector<std::uint64_t>& sizes) {
  return kHeaderSize + kIndexEntrySize * sizes.size() +
         std::accumulate(sizes.begin(), sizes.end(), std::uint64_t{0});
}

std::vector<Entry> EntriesToKeep(const std::vector<Entry>& entries, const EngineKey& own_key,
                                 std::uint64_t own_size, std::uint64_t max_bytes) {
  std::vector<Entry> others;
  std::uint64_t total = kHeaderSize + kIndexEntrySize + own_size;
  for (const Entry& e : entries) {
    if (e.key == own_key) continue;
    others.push_back(e);
    total += kIndexEntrySize + e.size;
  }
  std::vector<std::size_t> order(others.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return others[a].last_use < others[b].last_use;
  });
  std::vector<bool> evict(others.size(), false);
  std::size_t remaining = others.size();
  for (std::size_t position : order) {
    if (total <= max_bytes && remaining + 1 <= protocol::kMaxEntries) break;
    evict[position] = true;
    --remaining;
    total -= others[position].size + kIndexEntrySize;
  }
  std::vector<Entry> kept;
  for (std::size_t i = 0; i < others.size(); ++i) {
    if (!evict[i]) kept.push_back(others[i]);
  }
  return kept;
}

std::string EncodePrefix(const std::vector<Entry>& entries) {
  std::string out(protocol::kContainerMagic, kMagicSize);
  StoreLE(out, protocol::kContainerVersion, 4);
  StoreLE(out, entries.size(), 4);
  for (const Entry& e : entries) {
    out.append(reinterpret_cast<const char*>(e.key.data()), e.key.size());
    StoreLE(out, e.last_use, 8);
    StoreLE(out, e.size, 8);
  }
  return out;
}

}  // namespace container
}  // namespace runtime
}  // namespace torch_tensorrt_rtx
