#include "core/runtime/refit_engine.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <sstream>

#include <c10/util/Exception.h>

#include "core/runtime/execute_engine.h"
#include "core/runtime/log.h"

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

// What a Python user sees for the same tensor: "(3,)", "(2, 4)", "torch.float32".
std::string PyShape(const at::Tensor& t) {
  std::ostringstream os;
  os << "(";
  for (int64_t i = 0; i < t.dim(); ++i) os << (i ? ", " : "") << t.size(i);
  os << (t.dim() == 1 ? ",)" : ")");
  return os.str();
}

std::string PyDtype(const at::Tensor& t) {
  return "torch." + std::string(c10::getDtypeNames(t.scalar_type()).first);
}

std::string PyList(const std::vector<std::string>& names, std::size_t limit) {
  std::string out = "[";
  for (std::size_t i = 0; i < names.size() && i < limit; ++i) out += (i ? ", '" : "'") + names[i] + "'";
  return out + "]";
}

std::optional<trt::DataType> WeightType(at::ScalarType type) {
  switch (type) {
    case at::kFloat: return trt::DataType::kFloat;
    case at::kHalf: return trt::DataType::kHalf;
    case at::kChar: return trt::DataType::kInt8;
    case at::kByte: return trt::DataType::kUInt8;
    case at::kInt: return trt::DataType::kInt32;
    case at::kLong: return trt::DataType::kInt64;
    case at::kBool: return trt::DataType::kBool;
    default: return std::nullopt;
  }
}

}  // namespace

std::vector<std::string> SpecRefitWeights(const std::string& output_spec) {
  return SpecReader(output_spec).StringArray("refit_weights");
}

int RefitEngineLocked(TRTEngine& engine, const std::vector<std::string>& names,
                      const std::vector<at::Tensor>& weights) {
  const std::string what = "engine '" + engine.name() + "'";
  TORCH_CHECK(names.size() == weights.size(), what, ": ", names.size(), " refit weight names but ",
              weights.size(), " weight tensors");
  std::unique_ptr<trt::Refitter> refitter = engine.Engine().CreateRefitter();
  TORCH_CHECK(refitter != nullptr, what, ": TensorRT-RTX cannot refit it (the engine was not built with "
              "strip_engine_weights=True or immutable_weights=False), yet the program passes it ",
              weights.size(), " weights");
  const std::vector<std::string> all = refitter->AllWeights();
  const std::set<std::string> known(all.begin(), all.end());
  std::vector<at::Tensor> keepalive;  // host copies, read until the refit returns
  void* stream = nullptr;
  for (std::size_t i = 0; i < names.size(); ++i) {
    const std::string& name = names[i];
    if (!known.count(name)) {
      LogDebug(what + ": weight '" + name + "' is not refittable in the engine (folded); skipped");
      continue;
    }
    const at::Tensor& weight = weights[i];
    at::Tensor host = weight.detach().to(at::kCPU).contiguous();
    if (host.scalar_type() == at::kBFloat16) host = host.to(at::kFloat);  // stored as fp32 at build
    const std::optional<trt::DataType> type = WeightType(host.scalar_type());
    TORCH_CHECK(type.has_value(), what, ": weight '", name, "' (shape ", PyShape(weight), ", ", PyDtype(weight),
                ") has a dtype TensorRT-RTX weights cannot hold; expected the shape and dtype the engine was "
                "built with");
    if (!weight.is_cpu()) stream = CurrentStream(weight.device());
    keepalive.push_back(host);
    TORCH_CHECK(refitter->SetNamedWeights(name, trt::WeightsView{*type, host.data_ptr(), host.numel()}), what,
                ": TensorRT-RTX refused weight '", name, "' (shape ", PyShape(weight), ", ", PyDtype(weight),
                "); expected the shape and dtype the engine was built with");
  }
  std::vector<std::string> missing = refitter->MissingWeights();
  std::sort(missing.begin(), missing.end());
  TORCH_CHECK(missing.empty(), what, ": the engine still needs weights ", PyList(missing, 8),
              missing.size() > 8 ? " ..." : "", " (", missing.size(),
              " missing); the program does not provide them");
  TORCH_CHECK(refitter->Refit(stream), what, ": TensorRT-RTX refit_cuda_engine failed");
  LogInfo(what + ": refitted " + std::to_string(keepalive.size()) + " weights");
  return static_cast<int>(keepalive.size());
}

std::vector<at::Tensor> RefitBeforeRunLocked(const std::vector<at::Tensor>& inputs, TRTEngine& engine,
                                             const std::string* output_spec) {
  const std::size_t own = engine.input_names().size();
  if (inputs.size() <= own) return inputs;
  std::vector<at::Tensor> weights(inputs.begin() + static_cast<std::ptrdiff_t>(own), inputs.end());
  if (engine.NeedsRefitLocked()) {
    TORCH_CHECK(output_spec != nullptr, "engine '", engine.name(), "' got ", weights.size(),
                " trailing weight inputs but no names for them: a weightless engine runs through the "
                "saved program's op (torch.ops.tensorrt_rtx.execute_engine), whose output spec names them");
    RefitEngineLocked(engine, SpecRefitWeights(*output_spec), weights);
    engine.SetRefittedLocked();
  }
  return std::vector<at::Tensor>(inputs.begin(), inputs.begin() + static_cast<std::ptrdiff_t>(own));
}

}  // namespace runtime
}  // namespace torch_tensorrt_rtx
