// Refitting a weightless (or refittable) engine from the program's weights, through
// TensorRT-RTX's IRefitter -- the C++ twin of py/torch_tensorrt_rtx/runtime/refit.py, with the
// same semantics and error words.
//
// A weightless engine (compile(..., strip_engine_weights=True)) is built with STRIP_PLAN + REFIT.
// The saved program keeps each weight once, as a buffer, and passes it to the engine op as a
// trailing input (after the engine's own inputs); the op's output spec names them
// ("refit_weights"). The engine is refitted before its first run, and again only after
// TRTEngine::MarkForRefit() (refit_module_weights).
//
// Example (what RecordEngine::Execute does under the engine's mutex):
//
//   std::vector<at::Tensor> own = RefitBeforeRunLocked(inputs, engine, &output_spec);
//   ExecuteEngineLocked(own, engine);
//
// Contract:
//  - Names the engine does not list as refittable (folded away at build) are skipped; a weight
//    TensorRT-RTX refuses (another element count or dtype), a weight the engine still misses
//    afterwards, or a failed refit throws c10::Error naming the engine and the weights.
//  - Weights are copied to host memory for the refit; bfloat16 weights as float32 (how the
//    compiler stored them at build). The refit runs on torch's current stream of the weights'
//    device (synchronously for CPU tensors).
#ifndef TORCH_TENSORRT_RTX_CORE_RUNTIME_REFIT_ENGINE_H_
#define TORCH_TENSORRT_RTX_CORE_RUNTIME_REFIT_ENGINE_H_

#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "core/runtime/output_spec.h"
#include "core/runtime/trt_engine.h"

namespace torch_tensorrt_rtx {
namespace runtime {

// Refits `engine` with `weights` (by TensorRT weight name); returns how many were set.
// The caller holds engine.mutex().
int RefitEngineLocked(TRTEngine& engine, const std::vector<std::string>& names,
                      const std::vector<at::Tensor>& weights);

// The engine's own inputs of an op call. With trailing weight inputs, refits the engine from
// them first if it needs a refit (names from `output_spec`; nullptr when the caller has none,
// which is an error then; output_spec.h reads them). The caller holds engine.mutex().
std::vector<at::Tensor> RefitBeforeRunLocked(const std::vector<at::Tensor>& inputs, TRTEngine& engine,
                                             const std::string* output_spec);

}  // namespace runtime
}  // namespace torch_tensorrt_rtx

#endif  // TORCH_TENSORRT_RTX_CORE_RUNTIME_REFIT_ENGINE_H_
