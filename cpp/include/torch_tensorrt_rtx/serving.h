// torch_tensorrt_rtx/serving.h: the C++ API for serving programs saved by
// torch_tensorrt_rtx.save(..., output_format="aot_inductor").
//
// The runtime library (libtorchtrt_rtx_runtime.so; CMake: TorchTensorRTRTX::runtime) registers
// its ops with torch's dispatcher when it is loaded, whether it is linked into the program or
// dlopened. These inline functions reach those ops through the dispatcher, so they need no
// exported symbol of the library and work with either way of loading it:
//
//   torch_tensorrt_rtx::SetScopeSettings("", "eager", "disabled", "static");
//   const std::string why = torch_tensorrt_rtx::EngineOpMissingReason();
//   if (!why.empty()) throw std::runtime_error(why);   // before a package's first run
//   torch::inductor::AOTIModelPackageLoader loader("model.pt2");
//   std::vector<at::Tensor> outputs = loader.run(inputs);
#ifndef TORCH_TENSORRT_RTX_SERVING_H_
#define TORCH_TENSORRT_RTX_SERVING_H_

#include <optional>
#include <string>
#include <vector>

#include <ATen/core/dispatch/Dispatcher.h>

#include "core/definitions/engine_op.h"

namespace torch_tensorrt_rtx {

// True if a torch_tensorrt_rtx runtime library is loaded in this process.
inline bool RuntimeLoaded() {
  return c10::Dispatcher::singleton().findSchema({"tensorrt::runtime_backend", ""}).has_value();
}

// The TensorRT implementation inside the loaded runtime library: "tensorrt_rtx" for a library
// built with TENSORRT_RTX_HOME (Bazel --config=rtx), "none" for the default build.
inline std::string RuntimeBackend() {
  auto op = c10::Dispatcher::singleton()
                .findSchemaOrThrow("tensorrt::runtime_backend", "")
                .typed<std::string()>();
  return op.call();
}

// Empty if the op every engine of a saved program calls (tensorrt_rtx::execute_engine) is
// registered; otherwise why it is not and what to do, for an error message.
inline std::string EngineOpMissingReason() {
  const std::string op = definitions::kEngineOpName;
  if (c10::Dispatcher::singleton().findSchema({op.c_str(), ""}).has_value()) return "";
  if (!RuntimeLoaded()) {
    return "no torch_tensorrt_rtx runtime library is loaded, so nothing registers " + op +
           ": link libtorchtrt_rtx_runtime.so (CMake: TorchTensorRTRTX::runtime) or dlopen it "
           "before loading a package";
  }
  return "the loaded torch_tensorrt_rtx runtime library registers no " + op +
         " because it was built without TensorRT-RTX (its TensorRT backend is '" +
         RuntimeBackend() +
         "'), so it cannot run engines. Rebuild it with TENSORRT_RTX_HOME set to the unpacked "
         "TensorRT-RTX SDK (`pip wheel .`, or `scripts/build_native.sh --config=rtx`); tests run "
         "engines with the scripted-backend library (tests/core/runtime:libscripted_runtime_ops.so)";
}

// The calling thread's runtime settings for the engines of saved programs (what Python's
// torch_tensorrt_rtx.runtime.settings(...) sets). cache_path: "" is the per-user default
// runtime cache file, std::nullopt turns the cache file off.
// The op takes the runtime's one settings encoding, "name=value" entries.
inline void SetScopeSettings(const std::optional<std::string>& cache_path,
                             const std::string& kernel_strategy,
                             const std::string& cuda_graph_strategy,
                             const std::string& allocation_strategy) {
  auto op = c10::Dispatcher::singleton()
                .findSchemaOrThrow("tensorrt::set_scope_settings", "")
                .typed<void(std::vector<std::string>)>();
  op.call({cache_path ? "cache_path=" + *cache_path : std::string("cache_disabled"),
           "kernel_strategy=" + kernel_strategy, "cuda_graph_strategy=" + cuda_graph_strategy,
           "allocation_strategy=" + allocation_strategy});
}

}  // namespace torch_tensorrt_rtx

#endif  // TORCH_TENSORRT_RTX_SERVING_H_
