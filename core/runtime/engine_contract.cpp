#include "core/runtime/engine_contract.h"

#include "core/definitions/engine_record_layout.h"
#include "core/runtime/engine_record.h"

namespace torch_tensorrt_rtx {
namespace runtime {
namespace {

// Python's tuple spelling: "(9, 4)", "(3,)", "()".
std::string Tuple(const std::vector<int64_t>& dims) {
  std::string out = "(";
  for (std::size_t i = 0; i < dims.size(); ++i) out += (i ? ", " : "") + std::to_string(dims[i]);
  return out + (dims.size() == 1 ? ",)" : ")");
}

}  // namespace

std::string ProfileViolation(const std::string& what, const std::string& input,
                             const std::vector<int64_t>& shape, const std::vector<int64_t>& min,
                             const std::vector<int64_t>& max) {
  if (min.empty() && max.empty()) return "";
  if (shape.size() != min.size()) {
    return what + ": input '" + input + "' has rank " + std::to_string(shape.size()) +
           " (shape " + Tuple(shape) + "), expected rank " + std::to_string(min.size());
  }
  for (std::size_t dim = 0; dim < shape.size(); ++dim) {
    if (shape[dim] < min[dim] || shape[dim] > max[dim]) {
      return what + ": input '" + input + "' dimension " + std::to_string(dim) + " is " +
             std::to_string(shape[dim]) + ", allowed range is [" + std::to_string(min[dim]) +
             ", " + std::to_string(max[dim]) + "] (optimization profile 0, shape " +
             Tuple(shape) + ")";
    }
  }
  return "";
}

std::string IncompatibleStrategies(const std::string& what, const RuntimeSettings& settings,
                                   bool has_dynamic_inputs) {
  if (settings.cuda_graph_strategy != CudaGraphStrategy::kWholeGraphCapture ||
      settings.kernel_strategy != KernelStrategy::kLazy || !has_dynamic_inputs) {
    return "";
  }
  return what + ": " + kCudaGraphStrategySetting + "='" + Name(settings.cuda_graph_strategy) +
         "' with " + kKernelStrategySetting + "='" + Name(settings.kernel_strategy) +
         "' and dynamic input shapes: lazily specialized kernels cannot be captured in a "
         "whole-graph CUDA graph; use " + kKernelStrategySetting + "='" +
         Name(KernelStrategy::kEager) + "' or '" + Name(KernelStrategy::kNone) + "'";
}

std::string MalformedEngine(const std::string& what, std::size_t size) {
  return what + ": engine bytes are not a serialized TensorRT-RTX engine (" + std::to_string(size) +
         " bytes); expected the output of IBuilder.build_serialized_network";
}

std::string UnsupportedGpu(const std::string& what, const std::string& compute_capabilities) {
  std::string targets = "every GPU this TensorRT-RTX supports (a portable build)";
  if (compute_capabilities != layout::kPortable) {
    targets.clear();
    for (const std::string& name : SplitNames(compute_capabilities)) {
      targets += (targets.empty() ? "" : ", ") + name;
    }
  }
  return what + ": TensorRT-RTX reports that this GPU's compute capability is not one the "
         "engine was built for (UNSUPPORTED_CC); it was built for " + targets +
         ". Rebuild it with compute_capabilities naming this GPU, or run it on one of those";
}

}  // namespace runtime
}  // namespace torch_tensorrt_rtx
