// Makes the scripted backend this binary's default runtime (benchmarks and op tests).
#include "tests/core/runtime/scripted_backend.h"

namespace torch_tensorrt_rtx {
namespace runtime {
namespace trt {

std::shared_ptr<Runtime> CreateDefaultRuntime() {
  return std::make_shared<testing::ScriptedRuntime>();
}

const char* DefaultBackendName() noexcept { return "scripted"; }

}  // namespace trt
}  // namespace runtime
}  // namespace torch_tensorrt_rtx
