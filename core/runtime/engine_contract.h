// The engine-run contract: the checks both runtimes make before and while running an engine,
// and their messages. The Python runtime makes the same checks with the same words
// (py/torch_tensorrt_rtx/runtime/engine_contract.py); tests/py/cross_runtime/
// test_engine_contract.py runs each case through both and compares.
//
// Example:
//
//   const std::string why = ProfileViolation("engine 'blk0'", "x", {9, 4}, {1, 4}, {8, 4});
//   // "engine 'blk0': input 'x' dimension 0 is 9, allowed range is [1, 8] (optimization
//   //  profile 0, shape (9, 4))"
//
// Contract: every function returns "" when the check passes, else the whole message,
// opened by `what` (who is running, e.g. "engine 'blk0'"). None throws or logs.
#ifndef TORCH_TENSORRT_RTX_CORE_RUNTIME_ENGINE_CONTRACT_H_
#define TORCH_TENSORRT_RTX_CORE_RUNTIME_ENGINE_CONTRACT_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/runtime/runtime_settings.h"

namespace torch_tensorrt_rtx {
namespace runtime {

// An input shape against the engine's optimization-profile range [min, max] (profile 0):
// the rank, then each dim. An empty `min` means the backend reports no range (no check).
std::string ProfileViolation(const std::string& what, const std::string& input,
                             const std::vector<int64_t>& shape, const std::vector<int64_t>& min,
                             const std::vector<int64_t>& max);

// Whole-graph CUDA-graph capture cannot capture lazily specialized kernels of dynamic
// shapes: the warning for that combination, "" for any other.
std::string IncompatibleStrategies(const std::string& what, const RuntimeSettings& settings,
                                   bool has_dynamic_inputs);

// TensorRT-RTX reports that the engine bytes are not an engine (MALFORMED_ENGINE).
std::string MalformedEngine(const std::string& what, std::size_t size);

// TensorRT-RTX reports that this GPU's compute capability is not one the engine was built
// for. `compute_capabilities` is the record's COMPUTE_CAPABILITIES field.
std::string UnsupportedGpu(const std::string& what, const std::string& compute_capabilities);

}  // namespace runtime
}  // namespace torch_tensorrt_rtx

#endif  // TORCH_TENSORRT_RTX_CORE_RUNTIME_ENGINE_CONTRACT_H_
