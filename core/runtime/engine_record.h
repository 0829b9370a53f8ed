// EngineRecord: the C++ view of the engine record, the fixed-length list of byte strings
// that rebuilds one engine from disk. Its layout comes from the single definition,
// [engine_record] in py/torch_tensorrt_rtx/runtime/definitions.toml, through the generated
// engine_record_layout.h; Python's EngineRecord.to_list() produces the same list.
//
// Example:
//
//   EngineRecord record = EngineRecord::FromList(std::move(fields));  // no byte copy
//   const std::string& engine = record.engine_bytes();
//   std::vector<std::string> inputs = record.input_names();
//   std::vector<std::string> again = record.ToList();  // copies, for pickling
//
// Contract:
//  - FromList takes the list by value and moves every field in: the engine bytes are
//    never deep-copied. It throws EngineRecordError naming the expected and found length
//    or ABI version. An optional field holds layout::kSentinel on the wire and
//    std::nullopt in `optional()`.
//  - Records are immutable after construction; share them with std::shared_ptr.
#ifndef TORCH_TENSORRT_RTX_CORE_RUNTIME_ENGINE_RECORD_H_
#define TORCH_TENSORRT_RTX_CORE_RUNTIME_ENGINE_RECORD_H_

#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/definitions/engine_record_layout.h"

namespace torch_tensorrt_rtx {
namespace runtime {

class EngineRecordError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

class EngineRecord final {
 public:
  static EngineRecord FromList(std::vector<std::string> fields);

  // The packed form of Python's EngineRecord.pack(): magic "TRXREC01", u32 ABI version,
  // u32 field count, then per field a u64 length and the bytes (little-endian).
  // Unpack throws EngineRecordError on a wrong magic, ABI, count, a truncated buffer or
  // trailing bytes. Both FromList and Unpack reject a text field (every field but ENGINE)
  // that is not strict UTF-8: the same verdict as Python's EngineRecord on every input.
  std::string Pack() const;
  static EngineRecord Unpack(const void* data, std::size_t size);

  // The list form, field by field (copies every field, the engine bytes included).
  std::vector<std::string> ToList() const { return fields_; }

  const std::string& field(layout::Field f) const { return fields_[f]; }
  std::optional<std::string> optional(layout::Field f) const;

  const std::string& name() const { return fields_[layout::NAME]; }
  const std::string& engine_bytes() const { return fields_[layout::ENGINE]; }
  std::vector<std::string> input_names() const;
  std::vector<std::string> output_names() const;

 private:
  explicit EngineRecord(std::vector<std::string> fields) : fields_(std::move(fields)) {}
  std::vector<std::string> fields_;
};

// Splits a binding-name field on layout::kSeparator; "" and the sentinel give {}.
std::vector<std::string> SplitNames(const std::string& joined);

}  // namespace runtime
}  // namespace torch_tensorrt_rtx

#endif  // TORCH_TENSORRT_RTX_CORE_RUNTIME_ENGINE_RECORD_H_
