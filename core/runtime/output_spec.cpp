#include "core/runtime/output_spec.h"

#include <cctype>
#include <cstdint>

#include <c10/util/Exception.h>

namespace torch_tensorrt_rtx {
namespace runtime {
namespace {

// Just enough JSON to read one top-level array of strings from an output spec (written by
// Python's json.dumps: \uXXXX escapes for non-ASCII, any key order); other values are skipped.
class SpecReader {
 public:
  explicit SpecReader(const std::string& text) : s_(text) {}

  std::vector<std::string> StringArray(const std::string& key) {
    std::vector<std::string> found;
    Expect('{');
    if (Next() == '}') return found;
    while (true) {
      const std::string name = String();
      Expect(':');
      if (name == key) {
        found = Strings();
      } else {
        Skip(0);
      }
      if (Next() == '}') return found;
      Expect(',');
    }
  }

 private:
  [[noreturn]] void Fail(const std::string& why) {
    TORCH_CHECK(false, "engine op output spec: ", why, " at character ", pos_,
                "; expected the JSON object torch_tensorrt_rtx writes");
  }
  char Next() {  // the next non-space character, not consumed
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
    if (pos_ >= s_.size()) Fail("unexpected end");
    return s_[pos_];
  }
  void Expect(char c) {
    if (Next() != c) Fail(std::string("expected '") + c + "'");
    ++pos_;
  }
  void AppendUtf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }
  uint32_t Hex4() {
    if (pos_ + 4 > s_.size()) Fail("short \\u escape");
    uint32_t value = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = s_[pos_++];
      value <<= 4;
      if (c >= '0' && c <= '9') value |= static_cast<uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f') value |= static_cast<uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') value |= static_cast<uint32_t>(c - 'A' + 10);
      else Fail("bad \\u escape");
    }
    return value;
  }
  std::string String() {
    Expect('"');
    std::string out;
    while (true) {
      if (pos_ >= s_.size()) Fail("unterminated string");
      const char c = s_[pos_++];
      if (c == '"') return out;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= s_.size()) Fail("unterminated escape");
      const char e = s_[pos_++];
      switch (e) {
        case '"': case '\\': case '/': out += e; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          uint32_t cp = Hex4();
          if (cp >= 0xD800 && cp < 0xDC00 && s_.compare(pos_, 2, "\\u") == 0) {
            pos_ += 2;
            const uint32_t low = Hex4();
            if (low < 0xDC00 || low > 0xDFFF) Fail("bad surrogate pair");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          AppendUtf8(out, cp);
          break;
        }
        default: Fail("bad escape");
      }
    }
  }
  std::vector<std::string> Strings() {
    std::vector<std::string> out;
    Expect('[');
    if (Next() == ']') {
      ++pos_;
      return out;
    }
    while (true) {
      out.push_back(String());
      if (Next() == ']') {
        ++pos_;
        return out;
      }
      Expect(',');
    }
  }
  void Skip(int depth) {
    if (depth > 64) Fail("nested too deeply");
    const char c = Next();
    if (c == '"') {
      String();
    } else if (c == '{' || c == '[') {
      const char close = c == '{' ? '}' : ']';
      ++pos_;
      if (Next() == close) {
        ++pos_;
        return;
      }
      while (true) {
        if (close == '}') {
          String();
          Expect(':');
        }
        Skip(depth + 1);
        if (Next() == close) {
          ++pos_;
          return;
        }
        Expect(',');
      }
    } else {  // number, true, false, null
      const std::size_t start = pos_;
      while (pos_ < s_.size() && std::string(",}] \t\r\n").find(s_[pos_]) == std::string::npos) ++pos_;
      if (pos_ == start) Fail("expected a value");
    }
  }

  const std::string& s_;
  std::size_t pos_ = 0;
};

}  // namespace

std::vector<std::string> SpecRefitWeights(const std::string& output_spec) {
  return SpecReader(output_spec).StringArray("refit_weights");
}

}  // namespace runtime
}  // namespace torch_tensorrt_rtx
