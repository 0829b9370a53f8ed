#include "core/runtime/execute_engine.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>

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

void* CurrentStream(const c10::Device& device) {
  if (device.is_cpu()) return nullptr;
  const c10::impl::DeviceGuardImplInterface* impl = c10::impl::getDeviceGuardImpl(device.type());
  return impl->getStream(device).native_handle();
}

namespace {

bool DataDependent(const trt::Dims& shape) {
  return std::any_of(shape.begin(), shape.end(), [](int64_t d) { return d < 0; });
}

// Outputs sized during the run (nonzero-like): torch tensors handed to TensorRT-RTX on request,
// shaped by the size it reports (both happen before Enqueue returns).
class TensorOutputAllocator final : public trt::OutputAllocator {
 public:
  explicit TensorOutputAllocator(c10::Device device) : device_(device) {}
  void* Reallocate(const std::string& name, uint64_t size, uint64_t alignment) override {
    const int64_t bytes = std::max<int64_t>(static_cast<int64_t>(size), 1);  // nullptr means failure
    const int64_t align = std::max<int64_t>(static_cast<int64_t>(alignment), 1);
    at::Tensor raw = at::empty({bytes + align - 1}, at::TensorOptions().dtype(at::kByte).device(device_));
    const int64_t offset = (align - static_cast<int64_t>(reinterpret_cast<uintptr_t>(raw.data_ptr()) % align)) % align;
    buffers_[name] = raw.narrow(0, offset, bytes);
    return buffers_[name].data_ptr();
  }
  void NotifyShape(const std::string& name, const trt::Dims& dims) override { shapes_[name] = dims; }
  at::Tensor Output(const std::string& engine, const std::string& name, at::ScalarType dtype) {
    auto shape = shapes_.find(name);
    auto buffer = buffers_.find(name);
    TORCH_CHECK(shape != shapes_.end() && buffer != buffers_.end(), "engine '", engine, "': TensorRT-RTX ran ",
                "but reported no ", shape == shapes_.end() ? "shape" : "memory request", " for output '", name,
                "' through the output allocator");
    int64_t count = 1;
    for (int64_t d : shape->second) count *= d;
    const int64_t bytes = count * static_cast<int64_t>(c10::elementSize(dtype));
    TORCH_CHECK(bytes <= buffer->second.numel(), "engine '", engine, "': output '", name, "' has shape ",
                shape->second, " (", bytes, " bytes) but TensorRT-RTX asked for ", buffer->second.numel());
    return buffer->second.narrow(0, 0, bytes).view(dtype).reshape(shape->second);
  }

 private:
  c10::Device device_;
  std::map<std::string, at::Tensor> buffers_;
  std::map<std::string, trt::Dims> shapes_;
};

}  // namespace

std::vector<at::Tensor> ExecuteEngine(const std::vector<at::Tensor>& inputs, TRTEngine& engine) {
  std::lock_guard<std::mutex> guard(engine.mutex());
  return ExecuteEngineLocked(inputs, engine);
}

std::vector<at::Tensor> ExecuteEngineLocked(const std::vector<at::Tensor>& inputs,
                                            TRTEngine& engine) {
  const std::vector<std::string>& input_names = engine.input_names();
  const std::vector<std::string>& output_names = engine.output_names();
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
  TensorOutputAllocator allocator(device);
  for (const std::string& name : output_names) {
    const trt::Dims shape = context.GetTensorShape(name);
    if (DataDependent(shape)) {
      TORCH_CHECK(context.SetOutputAllocator(name, &allocator), "engine '", engine.name(),
                  "': TensorRT-RTX refused an output allocator for output '", name, "'");
      outputs.emplace_back();  // filled from the allocator after the run
      continue;
    }
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
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    if (!outputs[i].defined()) {
      outputs[i] = allocator.Output(engine.name(), output_names[i],
                                    ToScalarType(trt_engine.TensorDataType(output_names[i])));
    }
  }
  return outputs;
}

}  // namespace runtime
}  // namespace torch_tensorrt_rtx
