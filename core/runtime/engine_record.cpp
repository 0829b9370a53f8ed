#include "core/runtime/engine_record.h"

#include <cstring>
#include <utility>

namespace torch_tensorrt_rtx {
namespace runtime {

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
                            abi.substr(0, 32) + "'");
  }
  return EngineRecord(std::move(fields));
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
