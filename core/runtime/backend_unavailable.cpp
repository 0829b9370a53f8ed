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
      "also needs an RTX GPU of a compute capability the engine was built for (see "
      "torch_tensorrt_rtx.runtime.device: TensorRT-RTX's list, Turing only when targeted).");
}

const char* DefaultBackendName() noexcept { return "none"; }

}  // namespace trt
}  // namespace runtime
}  // namespace torch_tensorrt_rtx
