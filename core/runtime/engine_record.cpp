#include "core/runtime/engine_record.h"

#include <cctype>
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

namespace {

// The field names of a record whose ABI_VERSION field is `abi` and that has `count` fields:
// the current layout's or the previous one's; EngineRecordError for anything else.
const char* const* FieldNames(const std::string& abi, std::size_t count, std::size_t* num_fields) {
  const char* const* names = nullptr;
  if (abi == layout::kAbiVersionText) {
    names = layout::kFieldNames;
    *num_fields = layout::kNumFields;
  } else if (abi == layout::previous::kAbiVersionText) {
    names = layout::previous::kFieldNames;
    *num_fields = layout::previous::kNumFields;
  } else {
    throw EngineRecordError("engine record has the wrong ABI version: expected " +
                            std::string(layout::kAbiVersionText) + " (or " +
                            layout::previous::kAbiVersionText + "), found '" +
                            Printable(abi, 32) + "'");
  }
  if (count != *num_fields) {
    std::string list;
    for (std::size_t i = 0; i < *num_fields; ++i) list += (i ? ", " : "") + std::string(names[i]);
    throw EngineRecordError("engine record of ABI version " + abi +
                            " has the wrong length: expected " + std::to_string(*num_fields) +
                            " fields (" + list + "), found " + std::to_string(count));
  }
  return names;
}

bool IsAlnum(char c) {
  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

// COMPUTE_CAPABILITIES: layout::kPortable, or "SM" + 2 or 3 digits, joined by the separator.
void CheckCapabilities(const std::string& text) {
  bool ok = text == layout::kPortable;
  if (!ok) {
    ok = true;
    for (const std::string& name : SplitNames(text)) {
      bool digits = name.size() >= 4 && name.size() <= 5;
      for (std::size_t i = 2; digits && i < name.size(); ++i) digits = name[i] >= '0' && name[i] <= '9';
      ok = ok && digits && name.compare(0, 2, "SM") == 0;
    }
    ok = ok && !text.empty() && text != layout::kSentinel;
  }
  if (!ok) {
    throw EngineRecordError("engine record field COMPUTE_CAPABILITIES is '" + Printable(text, 64) +
                            "'; expected '" + layout::kPortable + "' or SM names like 'SM86' " +
                            "joined by '" + layout::kSeparator + "'");
  }
}

// Standard base64 with padding, nothing else (Python's _previous_capabilities applies the
// same rule); false for anything else.
bool DecodeBase64(const std::string& text, std::string* out) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  if (text.size() % 4 != 0) return false;
  out->clear();
  for (std::size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = text[i + k];
      if (c == '=' && last && k >= 2 && (k == 3 || text[i + 3] == '=')) {
        v[k] = 0;
        ++pad;
      } else {
        v[k] = value(c);
        if (v[k] < 0 || pad > 0) return false;
      }
    }
    const unsigned bits = (v[0] << 18) | (v[1] << 12) | (v[2] << 6) | v[3];
    out->push_back(static_cast<char>((bits >> 16) & 0xff));
    if (pad < 2) out->push_back(static_cast<char>((bits >> 8) & 0xff));
    if (pad < 1) out->push_back(static_cast<char>(bits & 0xff));
  }
  return true;
}

// One "name" of [A-Za-z0-9]{1,16} at `pos`; advances pos past the closing quote.
bool QuotedName(const std::string& text, std::size_t* pos, std::string* name) {
  std::size_t i = *pos;
  if (i >= text.size() || text[i] != '"') return false;
  std::size_t j = i + 1;
  while (j < text.size() && IsAlnum(text[j]) && j - i <= 16) ++j;
  if (j == i + 1 || j - i > 17 || j >= text.size() || text[j] != '"') return false;
  *name = text.substr(i + 1, j - i - 1);
  *pos = j + 1;
  return true;
}

// The previous version kept the compiler's compute capabilities inside SERIALIZED_METADATA,
// base64 of JSON written with sorted keys, so "compute_capabilities" opens it when present.
std::string PreviousCapabilities(const std::string& metadata) {
  if (metadata == layout::kSentinel) return layout::kPortable;
  const std::string where = "engine record of ABI version " + std::string(layout::previous::kAbiVersionText);
  std::string json;
  if (!DecodeBase64(metadata, &json)) {
    throw EngineRecordError(where + ": SERIALIZED_METADATA is not base64 (found '" +
                            Printable(metadata, 32) + "')");
  }
  static const std::string kPrefix = "{\"compute_capabilities\": ";
  if (json.compare(0, kPrefix.size(), kPrefix) != 0) return layout::kPortable;
  std::size_t pos = kPrefix.size();
  std::vector<std::string> names;
  std::string name;
  bool ok = false;
  if (QuotedName(json, &pos, &name)) {
    names.push_back(name);
    ok = true;
  } else if (pos < json.size() && json[pos] == '[') {
    ++pos;
    while (QuotedName(json, &pos, &name)) {
      names.push_back(name);
      if (json.compare(pos, 1, "]") == 0) {
        ok = true;
        break;
      }
      if (json.compare(pos, 2, ", ") != 0) break;
      pos += 2;
    }
  }
  if (!ok) {
    throw EngineRecordError(where + ": the compute_capabilities in SERIALIZED_METADATA are not a " +
                            "name or a list of names (found '" +
                            Printable(json.substr(kPrefix.size()), 32) + "')");
  }
  std::string joined;
  for (std::size_t i = 0; i < names.size(); ++i) {
    std::string n = names[i];
    if (n != layout::kPortable) {
      for (char& c : n) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    joined += (i ? layout::kSeparator : "") + n;
  }
  return joined;
}

// A previous-version record's fields as the current version's (Python: _upgrade_previous).
std::vector<std::string> UpgradePrevious(std::vector<std::string> old) {
  std::vector<std::string> fields(layout::kNumFields);
  for (std::size_t i = 0; i < layout::kNumFields; ++i) {
    for (std::size_t k = 0; k < layout::previous::kNumFields; ++k) {
      if (std::strcmp(layout::kFieldNames[i], layout::previous::kFieldNames[k]) == 0) {
        fields[i] = std::move(old[k]);
      }
    }
  }
  fields[layout::ABI_VERSION] = layout::kAbiVersionText;
  fields[layout::COMPUTE_CAPABILITIES] =
      PreviousCapabilities(old[layout::previous::SERIALIZED_METADATA]);
  return fields;
}

}  // namespace

EngineRecord EngineRecord::FromList(std::vector<std::string> fields) {
  std::size_t num_fields = 0;
  const std::string abi = fields.empty() ? std::string() : fields[0].substr(0, 32);
  const char* const* names = FieldNames(abi, fields.size(), &num_fields);
  for (std::size_t i = 0; i < num_fields; ++i) {
    if (std::strcmp(names[i], "ENGINE") == 0 || IsUtf8(fields[i])) continue;
    throw EngineRecordError("engine record field " + std::string(names[i]) +
                            " is not UTF-8 text (expected text, found bytes starting " +
                            "'" + Printable(fields[i], 16) + "'" + ")");
  }
  if (names != layout::kFieldNames) fields = UpgradePrevious(std::move(fields));
  CheckCapabilities(fields[layout::COMPUTE_CAPABILITIES]);
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
  std::size_t num_fields = 0;
  const char* const* names = FieldNames(std::to_string(abi), count, &num_fields);
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
                            " trailing bytes after field " + names[num_fields - 1] +
                            " (expected exactly " +
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
