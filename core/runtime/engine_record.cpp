#include "core/runtime/engine_record.h"

#include <cstdint>
#include <cstring>
#include <utility>

namespace torch_tensorrt_rtx {
namespace runtime {

namespace {

// Strict UTF-8 (RFC 3629), the same verdict as Python's bytes.decode("utf-8"): no overlong
// forms, no surrogates (U+D800..U+DFFF), nothing above U+10FFFF.
bool IsUtf8(const std::string& text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  std::size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    std::size_t extra = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the first continuation byte
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      extra = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      extra = 2;
      if (c == 0xE0) lo = 0xA0;  // overlong
      if (c == 0xED) hi = 0x9F;  // surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      extra = 3;
      if (c == 0xF0) lo = 0x90;  // overlong
      if (c == 0xF4) hi = 0x8F;  // above U+10FFFF
    } else {
      return false;
    }
    if (n - i <= extra) return false;
    if (p[i + 1] < lo || p[i + 1] > hi) return false;
    for (std::size_t k = 2; k <= extra; ++k) {
      if (p[i + k] < 0x80 || p[i + k] > 0xBF) return false;
    }
    i += extra + 1;
  }
  return true;
}

// At most `limit` bytes for an error message: printable ASCII as is, the rest as \xNN, so
// messages stay ASCII whatever the record holds.
std::string Printable(const std::string& bytes, std::size_t limit) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < bytes.size() && i < limit; ++i) {
    const auto b = static_cast<unsigned char>(bytes[i]);
    if (b >= 0x20 && b < 0x7f && b != '\\') {
      out += static_cast<char>(b);
    } else {
      out += "\\x";
      out += kDigits[b >> 4];
      out += kDigits[b & 15];
    }
  }
  return out;
}

}  // namespace

EngineRecord EngineRecord::FromList(std::vector<std::string> fields) {
  if (fields.size() != layout::kNumFields) {
    std::string names;
    for (std::size_t i = 0; i < layout::kNumFields; ++i) {
      names += (i ? ", " : "") + std::string(layout::kFieldNames[i]);
    }
    throw EngineRecordError("engine record has the wrong length: expected " +
                            std::to_string(layout::kNumFields) + " fields (" + names +
                            "), found " + std::to_string(fields.size()));
  }
  const std::string& abi = fields[layout::ABI_VERSION];
  if (abi != layout::kAbiVersionText) {
    throw EngineRecordError("engine record has the wrong ABI version: expected " +
                            std::string(layout::kAbiVersionText) + ", found '" +
                            Printable(abi, 32) + "'");
  }
  for (std::size_t i = 0; i < layout::kNumFields; ++i) {
    if (i == layout::ENGINE || IsUtf8(fields[i])) continue;
    throw EngineRecordError("engine record field " + std::string(layout::kFieldNames[i]) +
                            " is not UTF-8 text (expected text, found bytes starting " +
                            "'" + Printable(fields[i], 16) + "'" + ")");
  }
  return EngineRecord(std::move(fields));
}

namespace {

// The packed container is Python's EngineRecord.pack() format (checked against it by
// tests/py/cross_runtime); its magic comes from the layout file.
using layout::kPackMagic;

void PutLE(std::string& out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

uint64_t GetLE(const unsigned char* p, int bytes) {
  uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) value |= static_cast<uint64_t>(p[i]) << (8 * i);
  return value;
}

}  // namespace

std::string EngineRecord::Pack() const {
  std::size_t total = sizeof(kPackMagic) + 8;
  for (const auto& f : fields_) total += 8 + f.size();
  std::string out;
  out.reserve(total);
  out.append(kPackMagic, sizeof(kPackMagic));
  PutLE(out, static_cast<uint64_t>(layout::kAbiVersion), 4);
  PutLE(out, fields_.size(), 4);
  for (const auto& f : fields_) {
    PutLE(out, f.size(), 8);
    out.append(f);
  }
  return out;
}

EngineRecord EngineRecord::Unpack(const void* data, std::size_t size) {
  const auto* p = static_cast<const unsigned char*>(data);
  const std::size_t header = sizeof(kPackMagic) + 8;
  if (size < header) {
    throw EngineRecordError("packed engine record is truncated: expected at least " +
                            std::to_string(header) + " header bytes, found " +
                            std::to_string(size));
  }
  if (std::memcmp(p, kPackMagic, sizeof(kPackMagic)) != 0) {
    throw EngineRecordError(std::string("not a packed engine record: expected magic ") +
                            layout::kPackMagicText);
  }
  const uint64_t abi = GetLE(p + sizeof(kPackMagic), 4);
  const uint64_t count = GetLE(p + sizeof(kPackMagic) + 4, 4);
  if (abi != static_cast<uint64_t>(layout::kAbiVersion)) {
    throw EngineRecordError("engine record has the wrong ABI version: expected " +
                            std::string(layout::kAbiVersionText) + ", found " +
                            std::to_string(abi));
  }
  if (count != layout::kNumFields) {
    throw EngineRecordError("engine record has the wrong length: expected " +
                            std::to_string(layout::kNumFields) + " fields, found " +
                            std::to_string(count));
  }
  std::vector<std::string> fields;
  std::size_t pos = header;
  for (uint64_t i = 0; i < count; ++i) {
    if (size - pos < 8) {
      throw EngineRecordError("packed engine record is truncated at field " + std::to_string(i));
    }
    const uint64_t n = GetLE(p + pos, 8);
    pos += 8;
    if (size - pos < n) {
      throw EngineRecordError("packed engine record is truncated at field " + std::to_string(i) +
                              ": expected " + std::to_string(n) + " bytes, " +
                              std::to_string(size - pos) + " left");
    }
    fields.emplace_back(reinterpret_cast<const char*>(p + pos), n);
    pos += n;
  }
  if (pos != size) {
    throw EngineRecordError("packed engine record has " + std::to_string(size - pos) +
                            " trailing bytes after field " +
                            layout::kFieldNames[layout::kNumFields - 1] + " (expected exactly " +
                            std::to_string(pos) + " bytes)");
  }
  return FromList(std::move(fields));
}

std::optional<std::string> EngineRecord::optional(layout::Field f) const {
  if (fields_[f] == layout::kSentinel) return std::nullopt;
  return fields_[f];
}

std::vector<std::string> EngineRecord::input_names() const {
  return SplitNames(fields_[layout::INPUT_BINDING_NAMES]);
}

std::vector<std::string> EngineRecord::output_names() const {
  return SplitNames(fields_[layout::OUTPUT_BINDING_NAMES]);
}

std::vector<std::string> SplitNames(const std::string& joined) {
  std::vector<std::string> names;
  if (joined.empty() || joined == layout::kSentinel) return names;
  const std::size_t sep_len = std::strlen(layout::kSeparator);
  std::size_t start = 0;
  while (true) {
    const std::size_t pos = joined.find(layout::kSeparator, start);
    if (pos == std::string::npos) {
      names.push_back(joined.substr(start));
      return names;
    }
    names.push_back(joined.substr(start, pos - start));
    start = pos + sep_len;
  }
}

}  // namespace runtime
}  // namespace torch_tensorrt_rtx
