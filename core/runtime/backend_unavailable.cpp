// The default build's TensorRT "implementation": there is none. Engines can still be
// constructed from records, pickled and printed; deserializing one raises this error.
#include "core/runtime/trt_interface.h"

namespace torch_tensorrt_rtx {
namespace runtime {
namespace trt {

std::shared_ptr<Runtime> CreateDefaultRuntime() {
  throw BackendUnavailableError(
      "torch_tensorrt_rtx C++ runtime: built without TensorRT-RTX; rebuild with "
      "--config=rtx (TENSORRT_RTX_HOME set to NVIDIA's TensorRT-RTX SDK). Running an engine "
      "also needs an RTX GPU (compute capability 8.0, 8.6, 8.9 or 12.x).");
}

const char* DefaultBackendName() noexcept { return "none"; }

}  // namespace trt
}  // namespace runtime
}  // namespace torch_tensorrt_rtx
