// The narrow internal TensorRT interface: only the runtime objects the C++ runtime uses
// (runtime, engine, runtime config, runtime cache, execution context, refitter).
//
// Implementations:
//  - backend_tensorrt.cpp: NVIDIA TensorRT-RTX, compiled only with the SDK (--config=rtx);
//    //core/runtime:backend_tensorrt_compile_check compiles it against standard TensorRT.
//  - backend_unavailable.cpp: the default build; CreateDefaultRuntime() throws
//    BackendUnavailableError saying how to get a TensorRT-RTX build.
//  - tests/core/runtime/scripted_backend: a test double (never in the shipped library).
//  tests/py/dynamo/runtime/test_cpp_backend_contract.py checks that the backends implement
//  exactly these methods and that backend_tensorrt.cpp calls only the nvinfer1 names listed
//  in tests/core/runtime/tensorrt_rtx_api_names.txt (from the public TensorRT-RTX API docs).
//
// Example:
//
//   std::shared_ptr<trt::Runtime> rt = trt::CreateDefaultRuntime();
//   const std::string& bytes = record.engine_bytes();
//   if (rt->CheckEngine(bytes) != trt::EngineVerdict::kUsable) ...;   // TRTEngine says why
//   std::unique_ptr<trt::Engine> engine = rt->DeserializeEngine(record.name(), bytes);
//   TRTRuntimeConfig config(Sha256(bytes.data(), bytes.size()), settings);
//   trt::ExecutionContext& ctx = config.Context(*engine);   // the only way to get one
//
// Contract:
//  - Execution contexts are created ONLY by TRTRuntimeConfig: Engine's factory is private
//    and TRTRuntimeConfig is its only friend, so no other code path (an NCCL release,
//    a profiling toggle) can build a context that skips the cache flush and strategies.
//  - Lifetimes follow TensorRT: the Runtime outlives its Engines, an Engine outlives its
//    RuntimeConfigs, RuntimeCaches and ExecutionContexts.
//  - Methods that can fail in normal use return bool / empty; exceptions mean a broken
//    engine or a missing backend.
#ifndef TORCH_TENSORRT_RTX_CORE_RUNTIME_TRT_INTERFACE_H_
#define TORCH_TENSORRT_RTX_CORE_RUNTIME_TRT_INTERFACE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/runtime/runtime_settings.h"

namespace torch_tensorrt_rtx {
namespace runtime {

class TRTRuntimeConfig;

namespace trt {

enum class DataType { kFloat, kHalf, kBFloat16, kInt8, kUInt8, kInt32, kInt64, kBool };
using Dims = std::vector<int64_t>;

// No TensorRT implementation is compiled into this build.
class BackendUnavailableError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class RuntimeCache {
 public:
  virtual ~RuntimeCache() = default;
  // The cache as bytes; "" when there is nothing to save or serialization failed.
  virtual std::string Serialize() = 0;
  // False when the bytes are unusable (corrupt, other GPU or version).
  virtual bool Deserialize(const void* data, std::size_t size) = 0;
  virtual void Reset() = 0;
};

class RuntimeConfig {
 public:
  virtual ~RuntimeConfig() = default;
  // A runtime cache can only be created from a runtime config (TensorRT-RTX rule).
  virtual std::unique_ptr<RuntimeCache> CreateRuntimeCache() = 0;
  virtual bool SetRuntimeCache(RuntimeCache& cache) = 0;
  // Applies every strategy of `strategies` (one member per [strategies] table).
  virtual void SetStrategies(const StrategySettings& strategies) = 0;
};

// Memory for outputs whose shapes are known only during the run (data-dependent, -1 in
// GetTensorShape): TensorRT-RTX asks for it during Enqueue and reports the final shape before
// Enqueue returns (IOutputAllocator's reallocateOutputAsync / notifyShape).
class OutputAllocator {
 public:
  virtual ~OutputAllocator() = default;
  // `size` bytes aligned to `alignment` on `stream`'s device; nullptr when that fails.
  virtual void* Reallocate(const std::string& name, uint64_t size, uint64_t alignment) = 0;
  virtual void NotifyShape(const std::string& name, const Dims& dims) = 0;
};

class ExecutionContext {
 public:
  virtual ~ExecutionContext() = default;
  virtual bool SetInputShape(const std::string& name, const Dims& dims) = 0;
  // Output shapes are known after every input shape is set; {} if unknown.
  virtual Dims GetTensorShape(const std::string& name) = 0;
  virtual bool SetTensorAddress(const std::string& name, void* data) = 0;
  // Output `name` gets its memory from `allocator` (which outlives the next Enqueue).
  virtual bool SetOutputAllocator(const std::string& name, OutputAllocator* allocator) = 0;
  // Enqueues on `stream` (a cudaStream_t; nullptr for the default stream).
  virtual bool Enqueue(void* stream) = 0;
  virtual void SetProfiling(bool enabled) = 0;
  // allocation_strategy "user_managed": the scratch memory the current input shapes need,
  // and handing it to the context before Enqueue.
  virtual int64_t DeviceMemorySizeForShapes() = 0;
  virtual void SetDeviceMemory(void* data, int64_t size) = 0;
  // Multi-device engines: binds an NCCL communicator; false if unsupported.
  virtual bool SetCommunicator(void* communicator) = 0;
};

// Host weights handed to a Refitter: `count` elements of `type` at `values`.
struct WeightsView {
  DataType type;
  const void* values;
  int64_t count;
};

// Updates a refittable engine's weights (IRefitter): a weightless engine (STRIP_PLAN + REFIT)
// runs only after every weight was set and Refit succeeded.
class Refitter {
 public:
  virtual ~Refitter() = default;
  // The names of every weight the engine can refit.
  virtual std::vector<std::string> AllWeights() = 0;
  // False when TensorRT-RTX refuses it: an unknown name, another element count or type. The
  // memory is read until Refit returns.
  virtual bool SetNamedWeights(const std::string& name, const WeightsView& weights) = 0;
  // Weights the engine still needs before Refit can succeed.
  virtual std::vector<std::string> MissingWeights() = 0;
  // Refits the engine on `stream` (a cudaStream_t; nullptr: synchronously); false on failure.
  virtual bool Refit(void* stream) = 0;
};

class Engine {
 public:
  virtual ~Engine() = default;
  virtual int NumIOTensors() const = 0;
  virtual std::string IOTensorName(int index) const = 0;
  virtual bool IsInput(const std::string& name) const = 0;
  virtual DataType TensorDataType(const std::string& name) const = 0;
  // An input's smallest and largest shape in optimization profile 0.
  virtual Dims ProfileMin(const std::string& name) const = 0;
  virtual Dims ProfileMax(const std::string& name) const = 0;
  virtual std::unique_ptr<RuntimeConfig> CreateRuntimeConfig() = 0;
  // A refitter for this engine (which outlives it); nullptr when the engine is not refittable.
  virtual std::unique_ptr<Refitter> CreateRefitter() = 0;
  // Weight streaming (engines built with WEIGHT_STREAMING): the bytes of weights that can stream
  // (0: none), the bytes of them kept on the GPU (a budget >= StreamableWeightsSize() streams
  // nothing) and the budget TensorRT-RTX would choose. A budget changes only while the engine has
  // no execution context; false if refused.
  virtual int64_t StreamableWeightsSize() const = 0;
  virtual int64_t WeightStreamingBudget() const = 0;
  virtual bool SetWeightStreamingBudget(int64_t bytes) = 0;
  virtual int64_t WeightStreamingAutomaticBudget() const = 0;

 private:
  // Reachable only from TRTRuntimeConfig (see the contract above).
  friend class ::torch_tensorrt_rtx::runtime::TRTRuntimeConfig;
  virtual std::unique_ptr<ExecutionContext> CreateExecutionContext(RuntimeConfig& config) = 0;
};

// What TensorRT-RTX says of engine bytes from their header, before deserializing them.
enum class EngineVerdict { kUsable, kUnsupportedComputeCapability, kMalformed };

class Runtime {
 public:
  virtual ~Runtime() = default;
  virtual std::string Name() const = 0;
  virtual EngineVerdict CheckEngine(const std::string& bytes) = 0;
  // Throws std::runtime_error naming the engine when the bytes cannot be deserialized.
  virtual std::unique_ptr<Engine> DeserializeEngine(const std::string& engine_name,
                                                    const std::string& bytes) = 0;
};

// The runtime of the TensorRT implementation linked into this binary (a link-time
// choice, see the list above). Throws BackendUnavailableError when there is none.
std::shared_ptr<Runtime> CreateDefaultRuntime();
// Which implementation is linked in: "tensorrt_rtx", "tensorrt", "none" or a test name.
const char* DefaultBackendName() noexcept;

}  // namespace trt
}  // namespace runtime
}  // namespace torch_tensorrt_rtx

#endif  // TORCH_TENSORRT_RTX_CORE_RUNTIME_TRT_INTERFACE_H_
