#include "core/runtime/cache_container.h"

#include <algorithm>
#include <array>
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
constexpr std::size_t kIndexEntrySizeV1 = 48;  // key[32], last use u64, size u64

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

// Slicing-by-8: eight table lookups per 8 bytes, the same CRC as zlib's crc32.
std::uint32_t Checksum(const void* data, std::size_t size, std::uint32_t previous) noexcept {
  using Tables = std::array<std::array<std::uint32_t, 256>, 8>;
  static const Tables tables = [] {
    Tables t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int bit = 0; bit < 8; ++bit) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[0][i] = c;
    }
    for (std::uint32_t i = 0; i < 256; ++i) {
      for (int k = 1; k < 8; ++k) t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xff];
    }
    return t;
  }();
  std::uint32_t crc = ~previous;
  const unsigned char* p = static_cast<const unsigned char*>(data);
  for (; size >= 8; size -= 8, p += 8) {
    const std::uint32_t low = crc ^ (std::uint32_t{p[0]} | std::uint32_t{p[1]} << 8 | std::uint32_t{p[2]} << 16 |
                                     std::uint32_t{p[3]} << 24);
    crc = tables[7][low & 0xff] ^ tables[6][(low >> 8) & 0xff] ^ tables[5][(low >> 16) & 0xff] ^
          tables[4][low >> 24] ^ tables[3][p[4]] ^ tables[2][p[5]] ^ tables[1][p[6]] ^ tables[0][p[7]];
  }
  for (; size > 0; --size, ++p) crc = tables[0][(crc ^ *p) & 0xff] ^ (crc >> 8);
  return ~crc;
}

Header ParseHeader(const char* first, std::size_t available, std::uint64_t file_size) {
  if (file_size == 0) return Header{protocol::kContainerVersion, 0};
  if (file_size < kHeaderSize || available < kHeaderSize ||
      std::memcmp(first, protocol::kContainerMagic, kMagicSize) != 0) {
    throw ContainerError(Verdict::kForeign,
                         std::string("not a runtime cache container (expected the magic '") +
                             protocol::kContainerMagic + "' in the first 8 bytes)");
  }
  const std::uint64_t version = LoadLE(first + 8, 4);
  const std::uint64_t count = LoadLE(first + 12, 4);
  if (version < protocol::kOldestContainerVersion || version > protocol::kContainerVersion) {
    throw ContainerError(Verdict::kVersion, "container format version " + std::to_string(version) +
                                                ", this runtime reads versions " +
                                                std::to_string(protocol::kOldestContainerVersion) + " to " +
                                                std::to_string(protocol::kContainerVersion));
  }
  if (version == 1) {
    if (count > protocol::kMaxEntries) {
      throw ContainerError(Verdict::kCorrupt, std::to_string(count) + " entries, more than the limit " +
                                                  std::to_string(protocol::kMaxEntries));
    }
    if (kHeaderSize + count * kIndexEntrySizeV1 > file_size) {
      throw ContainerError(Verdict::kCorrupt, "an index of " + std::to_string(count) +
                                                  " entries does not fit in " + std::to_string(file_size) +
                                                  " bytes");
    }
  }
  return Header{static_cast<std::uint32_t>(version), static_cast<std::uint32_t>(count)};
}

std::size_t IndexBytes(const Header& header, std::uint64_t file_size) {
  if (header.version == 1) return std::size_t{header.count} * kIndexEntrySizeV1;
  const std::uint64_t fit = file_size < kHeaderSize ? 0 : (file_size - kHeaderSize) / kIndexEntrySize;
  return static_cast<std::size_t>(std::min<std::uint64_t>(fit, protocol::kMaxEntries)) * kIndexEntrySize;
}

namespace {

std::vector<Entry> ParseIndexV1(const char* index, std::size_t size, std::uint32_t count,
                                std::uint64_t file_size) {
  if (size != std::size_t{count} * kIndexEntrySizeV1) {
    throw ContainerError(Verdict::kCorrupt, "index truncated: " + std::to_string(size) +
                                                " bytes for " + std::to_string(count) + " entries");
  }
  std::vector<Entry> entries;
  entries.reserve(count);
  std::set<EngineKey> seen;
  std::uint64_t offset = kHeaderSize + size;
  for (std::uint32_t i = 0; i < count; ++i) {
    const char* p = index + std::size_t{i} * kIndexEntrySizeV1;
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

// Why intact records do not form the container a writer writes ("" if they do).
std::string LayoutProblem(const std::vector<Entry>& entries, std::uint32_t count, std::uint64_t file_size) {
  if (count != entries.size()) {
    return "the header counts " + std::to_string(count) + " entries, the index holds " +
           std::to_string(entries.size());
  }
  std::uint64_t offset = kHeaderSize + std::uint64_t{count} * kIndexEntrySize;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (entries[i].offset != offset) {
      return "entry " + std::to_string(i) + " starts at " + std::to_string(entries[i].offset) + ", expected " +
             std::to_string(offset);
    }
    offset += entries[i].size;
  }
  if (offset != file_size) return std::to_string(file_size - offset) + " bytes after the last entry";
  return "";
}

}  // namespace

Index ParseIndex(const char* index, std::size_t size, const Header& header, std::uint64_t file_size) {
  Index out;
  if (header.version == 1) {
    out.entries = ParseIndexV1(index, size, header.count, file_size);
    return out;
  }
  std::set<EngineKey> seen;
  std::vector<std::string> problems;
  std::uint64_t index_end = kHeaderSize + size;  // shrinks to the first entry's bytes once one is known
  for (std::size_t i = 0; kHeaderSize + (i + 1) * kIndexEntrySize <= index_end; ++i) {
    const char* p = index + i * kIndexEntrySize;
    const std::uint64_t record_end = kHeaderSize + (i + 1) * kIndexEntrySize;
    Entry entry;
    std::memcpy(entry.key.data(), p, entry.key.size());
    entry.last_use = LoadLE(p + 32, 8);
    entry.offset = LoadLE(p + 40, 8);
    entry.size = LoadLE(p + 48, 8);
    entry.checksum = static_cast<std::uint32_t>(LoadLE(p + 56, 4));
    const std::string n = std::to_string(i);
    if (Checksum(p, kIndexEntrySize - 4) != LoadLE(p + 60, 4)) {
      problems.push_back("index record " + n + " is damaged (checksum mismatch)");
    } else if (entry.size == 0 || seen.count(entry.key) != 0) {
      problems.push_back("entry " + n + " is empty or repeats a key");
    } else if (entry.offset < record_end || entry.size > file_size || entry.offset > file_size - entry.size) {
      problems.push_back("entry " + n + " (" + std::to_string(entry.size) + " bytes at " +
                         std::to_string(entry.offset) + ") runs past the end of the file (" +
                         std::to_string(file_size) + " bytes) or into the index");
    } else {
      seen.insert(entry.key);
      out.entries.push_back(entry);
      index_end = std::min(index_end, entry.offset);
    }
  }
  out.damage = problems.empty() ? LayoutProblem(out.entries, header.count, file_size) : problems.front();
  return out;
}

Verdict Decode(const char* data, std::size_t size, std::vector<Entry>* entries) {
  Index index;
  try {
    const Header header = ParseHeader(data, std::min(size, kHeaderSize), size);
    if (size == 0) return Verdict::kEmpty;
    index = ParseIndex(data + kHeaderSize, IndexBytes(header, size), header, size);
  } catch (const ContainerError& e) {
    return e.verdict();
  }
  std::vector<Entry> intact;
  for (const Entry& e : index.entries) {
    if (!e.checksum || Checksum(data + e.offset, static_cast<std::size_t>(e.size)) == *e.checksum) {
      intact.push_back(e);
    }
  }
  const bool consistent = index.damage.empty() && intact.size() == index.entries.size();
  if (entries != nullptr) *entries = std::move(intact);
  return consistent ? Verdict::kContainer : Verdict::kCorrupt;
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
  if (entries.size() > protocol::kMaxEntries) {
    throw std::invalid_argument("bad container: " + std::to_string(entries.size()) +
                                " entries, more than the limit " + std::to_string(protocol::kMaxEntries));
  }
  std::string out(protocol::kContainerMagic, kMagicSize);
  StoreLE(out, protocol::kContainerVersion, 4);
  StoreLE(out, entries.size(), 4);
  std::uint64_t offset = kHeaderSize + entries.size() * kIndexEntrySize;
  for (const Entry& e : entries) {
    if (e.size == 0 || !e.checksum) {
      throw std::invalid_argument("bad container entry: key of 32 bytes (expected 32), size " +
                                  std::to_string(e.size) + " (expected > 0)" +
                                  (e.checksum ? "" : ", no checksum"));
    }
    const std::size_t start = out.size();
    out.append(reinterpret_cast<const char*>(e.key.data()), e.key.size());
    StoreLE(out, e.last_use, 8);
    StoreLE(out, offset, 8);
    StoreLE(out, e.size, 8);
    StoreLE(out, *e.checksum, 4);
    StoreLE(out, Checksum(out.data() + start, kIndexEntrySize - 4), 4);
    offset += e.size;
  }
  return out;
}

}  // namespace container
}  // namespace runtime
}  // namespace torch_tensorrt_rtx
