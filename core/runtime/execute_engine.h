// ExecuteEngine: runs one TRTEngine on torch tensors -- what
// torch.ops.tensorrt.execute_engine does.
//
// Example:
//
//   std::vector<at::Tensor> outputs = ExecuteEngine({x}, engine);
//
// Contract:
//  - Inputs are matched to the record's input names in order (a weightless engine's trailing
//    weight inputs are taken off before, by refit_engine.h); a wrong count, dtype or
//    device throws c10::Error naming the engine, the binding and what was expected; a shape
//    outside the optimization profile throws the contract's message (engine_contract.h:
//    the dim and its range).
//  - allocation_strategy "user_managed": the scratch memory the context needs is allocated
//    with torch for each call and handed to the context.
//  - Outputs are allocated with the shapes the context reports, on the inputs' device.
//  - CUDA inputs are enqueued on torch's current stream for their device; CPU tensors
//    only work with backends that run on the host (the test backend).
//  - Holds engine.mutex() for the whole call (one context per engine);
//    ExecuteEngineLocked is the same for a caller that already holds it.
#ifndef TORCH_TENSORRT_RTX_CORE_RUNTIME_EXECUTE_ENGINE_H_
#define TORCH_TENSORRT_RTX_CORE_RUNTIME_EXECUTE_ENGINE_H_

#include <vector>

#include <ATen/ATen.h>

#include "core/runtime/trt_engine.h"

namespace torch_tensorrt_rtx {
namespace runtime {

std::vector<at::Tensor> ExecuteEngine(const std::vector<at::Tensor>& inputs, TRTEngine& engine);
std::vector<at::Tensor> ExecuteEngineLocked(const std::vector<at::Tensor>& inputs,
                                            TRTEngine& engine);

at::ScalarType ToScalarType(trt::DataType type);
// torch's current stream for `device`, found through the device guard registry (no CUDA
// headers needed); nullptr (the default stream) for CPU tensors.
void* CurrentStream(const c10::Device& device);

}  // namespace runtime
}  // namespace torch_tensorrt_rtx

#endif  // TORCH_TENSORRT_RTX_CORE_RUNTIME_EXECUTE_ENGINE_H_
