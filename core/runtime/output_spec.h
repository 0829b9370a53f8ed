// What the C++ runtime reads of an engine op's output spec (the JSON text of Python's
// dynamo/_engine_op.OutputSpec, written by json.dumps): only a weightless engine's weight names.
// The rest of the spec (output shapes) is for fake kernels, which run in Python.
#ifndef TORCH_TENSORRT_RTX_CORE_RUNTIME_OUTPUT_SPEC_H_
#define TORCH_TENSORRT_RTX_CORE_RUNTIME_OUTPUT_SPEC_H_

#include <string>
#include <vector>

namespace torch_tensorrt_rtx {
namespace runtime {

// The TensorRT weight names the spec lists under "refit_weights" (any key order, \u escapes
// decoded to UTF-8); empty when it lists none. Throws c10::Error naming the position when the
// text is not a JSON object.
std::vector<std::string> SpecRefitWeights(const std::string& output_spec);

}  // namespace runtime
}  // namespace torch_tensorrt_rtx

#endif  // TORCH_TENSORRT_RTX_CORE_RUNTIME_OUTPUT_SPEC_H_
