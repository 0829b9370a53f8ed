#include "core/runtime/execute_engine.h"

#include <c10/core/Stream.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <c10/util/Exception.h>

#include "core/runtime/engine_contract.h"

namespace torch_tensorrt_rtx {
namespace runtime {

at::ScalarType ToScalarType(trt::DataType type) {
  switch (type) {
    case trt::DataType::kFloat: return at::kFloat;
    case trt::DataType::kHalf: return at::kHalf;
    case trt::DataType::kBFloat16: return at::kBFloat16;
    case trt::DataType::kInt8: return at::kChar;
    case trt::DataType::kUInt8: return at::kByte;
    case trt::DataType::kInt32: return at::kInt;
    case trt::DataType::kInt64: return at::kLong;
    case trt::DataType::kBool: return at::kBool;
  }
  TORCH_CHECK(false, "unknown TensorRT data type ", static_cast<int>(type));
}

namespace {

// torch's current stream for `device`, found through the device guard registry so this
// file needs no CUDA headers; nullptr (the default stream) for CPU tensors.
void* CurrentStream(const c10::Device& device) {
  if (device.is_cpu()) return nullptr;
  const c10::impl::DeviceGuardImplInterface* impl = c10::impl::getDeviceGuardImpl(device.type());
  return impl->getStream(device).native_handle();
}

}  // namespace

std::vector<at::Tensor> ExecuteEngine(const std::vector<at::Tensor>& inputs, TRTEngine& engine) {
  std::lock_guard<std::mutex> guard(engine.mutex());
  return ExecuteEngineLocked(inputs, engine);
}

std::vector<at::Tensor> ExecuteEngineLocked(const std::vector<at::Tensor>& inputs,
                                            TRTEngine& engine) {
  const std::vector<std::string>& input_names = engine.input_names();
  const std::vector<std::string>& output_names = engine.output_names();
  // A weightless engine (strip_engine_weights / immutable_weights=False) takes its weights as
  // trailing inputs; only the Python runtime refits engines so far.
  TORCH_CHECK(inputs.size() <= input_names.size(), "engine '", engine.name(), "' got ",
              inputs.size() - input_names.size(),
              " trailing weight inputs: it is a weightless/refittable engine (compiled with "
              "strip_engine_weights=True or immutable_weights=False), which the C++ runtime does not "
              "refit yet; run the program on the Python runtime (set TORCH_TENSORRT_RTX_RUNTIME_LIBRARY=\"\" "
              "before importing torch_tensorrt_rtx)");
  TORCH_CHECK(inputs.size() == input_names.size(), "engine '", engine.name(), "' expects ",
              input_names.size(), " inputs, got ", inputs.size());
  const c10::Device device = inputs.empty() ? c10::Device(c10::kCPU) : inputs[0].device();

  trt::Engine& trt_engine = engine.Engine();
  trt::ExecutionContext& context = engine.Context();

  // Contiguous copies are kept alive until the enqueue below has been issued.
  std::vector<at::Tensor> held;
  held.reserve(inputs.size());
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const std::string& name = input_names[i];
    const at::ScalarType expected = ToScalarType(trt_engine.TensorDataType(name));
    TORCH_CHECK(inputs[i].scalar_type() == expected, "engine '", engine.name(), "' input '",
                name, "': expected dtype ", expected, ", got ", inputs[i].scalar_type());
    TORCH_CHECK(inputs[i].device() == device, "engine '", engine.name(), "' input '", name,
                "': expected device ", device, " (like input 0), got ", inputs[i].device());
    held.push_back(inputs[i].contiguous());
    const at::Tensor& t = held.back();
    const std::string outside = ProfileViolation("engine '" + engine.name() + "'", name,
                                                 t.sizes().vec(), trt_engine.ProfileMin(name),
                                                 trt_engine.ProfileMax(name));
    TORCH_CHECK(outside.empty(), outside);
    TORCH_CHECK(context.SetInputShape(name, t.sizes().vec()), "engine '", engine.name(),
                "': TensorRT-RTX rejected shape ", t.sizes(), " for input '", name, "'");
    TORCH_CHECK(context.SetTensorAddress(name, t.data_ptr()), "engine '", engine.name(),
                "': cannot bind input '", name, "'");
  }
  std::vector<at::Tensor> outputs;
  outputs.reserve(output_names.size());
  for (const std::string& name : output_names) {
    const trt::Dims shape = context.GetTensorShape(name);
    at::Tensor out = at::empty(shape, at::TensorOptions()
                                          .dtype(ToScalarType(trt_engine.TensorDataType(name)))
                                          .device(device));
    TORCH_CHECK(context.SetTensorAddress(name, out.data_ptr()), "engine '", engine.name(),
                "': cannot bind output '", name, "'");
    outputs.push_back(std::move(out));
  }
  if (engine.SettingsLocked().allocation_strategy == AllocationStrategy::kUserManaged) {
    // The context owns no scratch memory under this strategy: lend it torch's, kept alive
    // until the enqueue below was issued (the caching allocator orders reuse on the stream).
    const int64_t size = context.DeviceMemorySizeForShapes();
    held.push_back(at::empty({size}, at::TensorOptions().dtype(at::kByte).device(device)));
    context.SetDeviceMemory(held.back().data_ptr(), size);
  }
  TORCH_CHECK(context.Enqueue(CurrentStream(device)), "engine '", engine.name(),
              "': TensorRT failed to enqueue the engine");
  return outputs;
}

}  // namespace runtime
}  // namespace torch_tensorrt_rtx
