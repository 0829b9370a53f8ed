// A packed-record tensor (what a saved program holds: a 1-D uint8 tensor of EngineRecord::Pack()
// bytes) from a record list (scripted_backend.h's MakeRecordList), for tests of the engine ops.
#ifndef TORCH_TENSORRT_RTX_TESTS_CORE_RUNTIME_PACKED_RECORD_H_
#define TORCH_TENSORRT_RTX_TESTS_CORE_RUNTIME_PACKED_RECORD_H_

#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include <ATen/ATen.h>

#include "core/runtime/engine_record.h"

namespace torch_tensorrt_rtx {
namespace testing {

inline at::Tensor PackedRecordTensor(std::vector<std::string> record_list) {
  const std::string packed = runtime::EngineRecord::FromList(std::move(record_list)).Pack();
  at::Tensor t = at::empty({static_cast<int64_t>(packed.size())}, at::kByte);
  std::memcpy(t.data_ptr(), packed.data(), packed.size());
  return t;
}

}  // namespace testing
}  // namespace torch_tensorrt_rtx

#endif  // TORCH_TENSORRT_RTX_TESTS_CORE_RUNTIME_PACKED_RECORD_H_
