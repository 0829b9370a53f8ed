// The TensorRT implementation of the narrow interface (trt_interface.h), written against
// the public TensorRT-RTX C++ API reference. Built only with NVIDIA's SDK (--config=rtx).
//
// Every TensorRT-RTX-only call (IRuntimeCache, the kernel-specialization and CUDA-graph
// strategies, the engine validity check) sits in the ONE `#if TORCH_TENSORRT_RTX_HAS_RTX_API` block below, so the
// rest of this file compiles against standard TensorRT headers; //core/runtime:
// backend_tensorrt_compile_check does exactly that in CI with TensorRT 10.14 headers.
#include <NvInferRuntime.h>

#include <cstring>
#include <exception>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>

#include "core/runtime/log.h"
#include "core/runtime/trt_interface.h"

namespace torch_tensorrt_rtx {
namespace runtime {
namespace trt {
namespace {

namespace nv = nvinfer1;

class Logger final : public nv::ILogger {
 public:
  void log(Severity severity, const char* msg) noexcept override {
    switch (severity) {
      case Severity::kINTERNAL_ERROR:
      case Severity::kERROR: LogError(std::string("TensorRT: ") + msg); break;
      case Severity::kWARNING: LogWarning(std::string("TensorRT: ") + msg); break;
      case Severity::kINFO: LogInfo(std::string("TensorRT: ") + msg); break;
      default: LogDebug(std::string("TensorRT: ") + msg); break;
    }
  }
};

// Layer timings at debug level while profiling is on.
class Profiler final : public nv::IProfiler {
 public:
  void reportLayerTime(const char* layer, float ms) noexcept override {
    LogDebug(std::string("profile: ") + layer + " " + std::to_string(ms) + " ms");
  }
};

DataType FromTensorRT(nv::DataType type, const std::string& name) {
  switch (type) {
    case nv::DataType::kFLOAT: return DataType::kFloat;
    case nv::DataType::kHALF: return DataType::kHalf;
    case nv::DataType::kBF16: return DataType::kBFloat16;
    case nv::DataType::kINT8: return DataType::kInt8;
    case nv::DataType::kUINT8: return DataType::kUInt8;
    case nv::DataType::kINT32: return DataType::kInt32;
    case nv::DataType::kINT64: return DataType::kInt64;
    case nv::DataType::kBOOL: return DataType::kBool;
    default: break;
  }
  throw std::runtime_error("tensor '" + name + "' has TensorRT data type " +
                           std::to_string(static_cast<int>(type)) +
                           ", which the C++ runtime does not bind (expected float, half, bf16, "
                           "int8, uint8, int32, int64 or bool)");
}

nv::DataType ToTensorRT(DataType type) {
  switch (type) {
    case DataType::kFloat: return nv::DataType::kFLOAT;
    case DataType::kHalf: return nv::DataType::kHALF;
    case DataType::kBFloat16: return nv::DataType::kBF16;
    case DataType::kInt8: return nv::DataType::kINT8;
    case DataType::kUInt8: return nv::DataType::kUINT8;
    case DataType::kInt32: return nv::DataType::kINT32;
    case DataType::kInt64: return nv::DataType::kINT64;
    case DataType::kBool: return nv::DataType::kBOOL;
  }
  return nv::DataType::kFLOAT;
}

// {} for the "unknown" dims TensorRT reports as nbDims < 0.
Dims ToDims(const nv::Dims& d) {
  if (d.nbDims < 0) return {};
  return Dims(d.d, d.d + d.nbDims);
}

nv::ExecutionContextAllocationStrategy ToTensorRT(AllocationStrategy s) {
  switch (s) {
    case AllocationStrategy::kStatic: return nv::ExecutionContextAllocationStrategy::kSTATIC;
    case AllocationStrategy::kOnProfileChange:
      return nv::ExecutionContextAllocationStrategy::kON_PROFILE_CHANGE;
    case AllocationStrategy::kUserManaged:
      return nv::ExecutionContextAllocationStrategy::kUSER_MANAGED;
  }
  return nv::ExecutionContextAllocationStrategy::kSTATIC;
}

// ---- The TensorRT-RTX-only part: the one #if ------------------------------------------
#if TORCH_TENSORRT_RTX_HAS_RTX_API

class RtxRuntimeCache final : public RuntimeCache {
 public:
  explicit RtxRuntimeCache(nv::IRuntimeCache* cache) : cache_(cache) {}
  std::string Serialize() override {
    std::unique_ptr<nv::IHostMemory> memory(cache_->serialize());
    if (memory == nullptr || memory->size() == 0) return "";
    return std::string(static_cast<const char*>(memory->data()), memory->size());
  }
  bool Deserialize(const void* data, std::size_t size) override {
    return cache_->deserialize(data, size);
  }
  void Reset() override { cache_->reset(); }
  const nv::IRuntimeCache& get() const { return *cache_; }

 private:
  std::unique_ptr<nv::IRuntimeCache> cache_;
};

std::unique_ptr<RuntimeCache> CreateRtxRuntimeCache(nv::IRuntimeConfig& config) {
  nv::IRuntimeCache* cache = config.createRuntimeCache();
  if (cache == nullptr) return nullptr;
  return std::make_unique<RtxRuntimeCache>(cache);
}

bool SetRtxRuntimeCache(nv::IRuntimeConfig& config, RuntimeCache& cache) {
  auto* rtx = dynamic_cast<RtxRuntimeCache*>(&cache);
  return rtx != nullptr && config.setRuntimeCache(rtx->get());
}

void SetRtxKernelStrategy(nv::IRuntimeConfig& config, KernelStrategy s) {
  using S = nv::DynamicShapesKernelSpecializationStrategy;
  config.setDynamicShapesKernelSpecializationStrategy(
      s == KernelStrategy::kEager ? S::kEAGER : s == KernelStrategy::kNone ? S::kNONE : S::kLAZY);
}

void SetRtxCudaGraphStrategy(nv::IRuntimeConfig& config, CudaGraphStrategy s) {
  config.setCudaGraphStrategy(s == CudaGraphStrategy::kWholeGraphCapture
                                  ? nv::CudaGraphStrategy::kWHOLE_GRAPH_CAPTURE
                                  : nv::CudaGraphStrategy::kDISABLED);
}

EngineVerdict CheckRtxEngine(nv::IRuntime& runtime, const std::string& bytes) {
  uint64_t diagnostics = 0;
  runtime.getEngineValidity(bytes.data(), static_cast<int64_t>(bytes.size()), &diagnostics);
  using D = nv::EngineInvalidityDiagnostics;
  if (diagnostics & static_cast<uint64_t>(D::kMALFORMED_ENGINE)) return EngineVerdict::kMalformed;
  if (diagnostics & static_cast<uint64_t>(D::kUNSUPPORTED_CC)) {
    return EngineVerdict::kUnsupportedComputeCapability;
  }
  return EngineVerdict::kUsable;
}

#else  // Standard TensorRT: no runtime cache, no JIT strategies.

std::unique_ptr<RuntimeCache> CreateRtxRuntimeCache(nv::IRuntimeConfig&) { return nullptr; }
bool SetRtxRuntimeCache(nv::IRuntimeConfig&, RuntimeCache&) { return false; }
void SetRtxKernelStrategy(nv::IRuntimeConfig&, KernelStrategy) {}
void SetRtxCudaGraphStrategy(nv::IRuntimeConfig&, CudaGraphStrategy) {}
EngineVerdict CheckRtxEngine(nv::IRuntime&, const std::string&) { return EngineVerdict::kUsable; }

#endif  // TORCH_TENSORRT_RTX_HAS_RTX_API
// ---------------------------------------------------------------------------------------

class TensorRTConfig final : public RuntimeConfig {
 public:
  explicit TensorRTConfig(nv::IRuntimeConfig* config) : config_(config) {}
  std::unique_ptr<RuntimeCache> CreateRuntimeCache() override {
    return CreateRtxRuntimeCache(*config_);
  }
  bool SetRuntimeCache(RuntimeCache& cache) override { return SetRtxRuntimeCache(*config_, cache); }
  void SetStrategies(const StrategySettings& s) override {
    SetRtxKernelStrategy(*config_, s.kernel_strategy);
    SetRtxCudaGraphStrategy(*config_, s.cuda_graph_strategy);
    config_->setExecutionContextAllocationStrategy(ToTensorRT(s.allocation_strategy));
  }
  nv::IRuntimeConfig* get() { return config_.get(); }

 private:
  std::unique_ptr<nv::IRuntimeConfig> config_;
};

// TensorRT's output-allocator callbacks, forwarded to the runtime's OutputAllocator.
class OutputAllocatorAdapter final : public nv::IOutputAllocator {
 public:
  explicit OutputAllocatorAdapter(OutputAllocator* allocator) : allocator_(allocator) {}
  void* reallocateOutputAsync(char const* name, void*, uint64_t size, uint64_t alignment,
                              cudaStream_t) noexcept override {
    try {
      return allocator_->Reallocate(name, size, alignment);
    } catch (const std::exception& e) {
      LogError(std::string("output allocator for '") + name + "': " + e.what());
      return nullptr;  // TensorRT then fails the enqueue
    }
  }
  void notifyShape(char const* name, nv::Dims const& dims) noexcept override {
    try {
      allocator_->NotifyShape(name, ToDims(dims));
    } catch (const std::exception& e) {
      LogError(std::string("output allocator for '") + name + "': " + e.what());
    }
  }

 private:
  OutputAllocator* allocator_;
};

class TensorRTContext final : public ExecutionContext {
 public:
  explicit TensorRTContext(nv::IExecutionContext* context) : context_(context) {}
  bool SetInputShape(const std::string& name, const Dims& dims) override {
    nv::Dims d{};
    if (dims.size() > static_cast<std::size_t>(nv::Dims::MAX_DIMS)) return false;
    d.nbDims = static_cast<int32_t>(dims.size());
    for (std::size_t i = 0; i < dims.size(); ++i) d.d[i] = dims[i];
    return context_->setInputShape(name.c_str(), d);
  }
  Dims GetTensorShape(const std::string& name) override {
    return ToDims(context_->getTensorShape(name.c_str()));
  }
  bool SetTensorAddress(const std::string& name, void* data) override {
    return context_->setTensorAddress(name.c_str(), data);
  }
  bool SetOutputAllocator(const std::string& name, OutputAllocator* allocator) override {
    auto adapter = std::make_unique<OutputAllocatorAdapter>(allocator);
    if (!context_->setOutputAllocator(name.c_str(), adapter.get())) return false;
    adapters_[name] = std::move(adapter);
    return true;
  }
  bool Enqueue(void* stream) override {
    return context_->enqueueV3(static_cast<cudaStream_t>(stream));
  }
  void SetProfiling(bool enabled) override {
    context_->setProfiler(enabled ? &profiler_ : nullptr);
  }
  int64_t DeviceMemorySizeForShapes() override {
    return static_cast<int64_t>(context_->updateDeviceMemorySizeForShapes());
  }
  void SetDeviceMemory(void* data, int64_t size) override { context_->setDeviceMemoryV2(data, size); }
  // Neither the TensorRT 10.14 nor the TensorRT-RTX API this file is written against
  // exposes an NCCL communicator on the execution context.
  bool SetCommunicator(void*) override { return false; }

 private:
  Profiler profiler_;
  std::map<std::string, std::unique_ptr<OutputAllocatorAdapter>> adapters_;  // outlive context_
  std::unique_ptr<nv::IExecutionContext> context_;
};

// Weight names from getAllWeights / getMissingWeights (both: count first, then fill).
template <typename List>
std::vector<std::string> WeightNames(List list) {
  const int32_t count = list(0, nullptr);
  if (count <= 0) return {};
  std::vector<char const*> names(static_cast<std::size_t>(count), nullptr);
  const int32_t filled = list(count, names.data());
  std::vector<std::string> out;
  for (int32_t i = 0; i < filled && i < count; ++i) {
    if (names[i] != nullptr) out.emplace_back(names[i]);
  }
  return out;
}

class TensorRTRefitter final : public Refitter {
 public:
  explicit TensorRTRefitter(nv::IRefitter* refitter) : refitter_(refitter) {}
  std::vector<std::string> AllWeights() override {
    return WeightNames([this](int32_t n, char const** names) { return refitter_->getAllWeights(n, names); });
  }
  bool SetNamedWeights(const std::string& name, const WeightsView& weights) override {
    nv::Weights w{};
    w.type = ToTensorRT(weights.type);
    w.values = weights.values;
    w.count = weights.count;
    return refitter_->setNamedWeights(name.c_str(), w);
  }
  std::vector<std::string> MissingWeights() override {
    return WeightNames([this](int32_t n, char const** names) { return refitter_->getMissingWeights(n, names); });
  }
  bool Refit(void* stream) override {
    if (stream == nullptr) return refitter_->refitCudaEngine();
    return refitter_->refitCudaEngineAsync(static_cast<cudaStream_t>(stream));
  }

 private:
  std::unique_ptr<nv::IRefitter> refitter_;
};

class TensorRTEngine final : public Engine {
 public:
  // `logger` is the runtime's, which outlives its engines (the refitter logs through it).
  TensorRTEngine(nv::ICudaEngine* engine, nv::ILogger& logger) : engine_(engine), logger_(logger) {}
  int NumIOTensors() const override { return engine_->getNbIOTensors(); }
  std::string IOTensorName(int index) const override { return engine_->getIOTensorName(index); }
  bool IsInput(const std::string& name) const override {
    return engine_->getTensorIOMode(name.c_str()) == nv::TensorIOMode::kINPUT;
  }
  DataType TensorDataType(const std::string& name) const override {
    return FromTensorRT(engine_->getTensorDataType(name.c_str()), name);
  }
  Dims ProfileMin(const std::string& name) const override {
    return ToDims(engine_->getProfileShape(name.c_str(), 0, nv::OptProfileSelector::kMIN));
  }
  Dims ProfileMax(const std::string& name) const override {
    return ToDims(engine_->getProfileShape(name.c_str(), 0, nv::OptProfileSelector::kMAX));
  }
  std::unique_ptr<RuntimeConfig> CreateRuntimeConfig() override {
    nv::IRuntimeConfig* config = engine_->createRuntimeConfig();
    if (config == nullptr) return nullptr;
    return std::make_unique<TensorRTConfig>(config);
  }
  std::unique_ptr<Refitter> CreateRefitter() override {
    nv::IRefitter* refitter = nv::createInferRefitter(*engine_, logger_);
    if (refitter == nullptr) return nullptr;
    return std::make_unique<TensorRTRefitter>(refitter);
  }
  int64_t StreamableWeightsSize() const override { return engine_->getStreamableWeightsSize(); }
  int64_t WeightStreamingBudget() const override { return engine_->getWeightStreamingBudgetV2(); }
  bool SetWeightStreamingBudget(int64_t bytes) override {
    return engine_->setWeightStreamingBudgetV2(bytes);
  }
  int64_t WeightStreamingAutomaticBudget() const override {
    return engine_->getWeightStreamingAutomaticBudget();
  }

 private:
  std::unique_ptr<ExecutionContext> CreateExecutionContext(RuntimeConfig& config) override {
    nv::IExecutionContext* context =
        engine_->createExecutionContext(static_cast<TensorRTConfig&>(config).get());
    if (context == nullptr) return nullptr;
    return std::make_unique<TensorRTContext>(context);
  }
  std::unique_ptr<nv::ICudaEngine> engine_;
  nv::ILogger& logger_;
};

class TensorRTRuntime final : public Runtime {
 public:
  TensorRTRuntime() : runtime_(nv::createInferRuntime(logger_)) {
    if (runtime_ == nullptr) throw std::runtime_error("TensorRT: createInferRuntime failed");
  }
  std::string Name() const override { return "TensorRT-RTX"; }
  EngineVerdict CheckEngine(const std::string& bytes) override {
    return CheckRtxEngine(*runtime_, bytes);
  }
  std::unique_ptr<Engine> DeserializeEngine(const std::string& engine_name,
                                            const std::string& bytes) override {
    nv::ICudaEngine* engine = runtime_->deserializeCudaEngine(bytes.data(), bytes.size());
    if (engine == nullptr) {
      throw std::runtime_error(
          "engine '" + engine_name + "': TensorRT-RTX could not deserialize " +
          std::to_string(bytes.size()) + " engine bytes (see the TensorRT error above; it "
          "needs an RTX GPU of a compute capability the engine was built for, which TensorRT-RTX "
          "names in that error, and a TensorRT-RTX at least as new as the one that built it)");
    }
    return std::make_unique<TensorRTEngine>(engine, logger_);
  }

 private:
  Logger logger_;  // must outlive runtime_
  std::unique_ptr<nv::IRuntime> runtime_;
};

}  // namespace

std::shared_ptr<Runtime> CreateDefaultRuntime() { return std::make_shared<TensorRTRuntime>(); }

const char* DefaultBackendName() noexcept {
#if TORCH_TENSORRT_RTX_HAS_RTX_API
  return "tensorrt_rtx";
#else
  return "tensorrt";
#endif
}

}  // namespace trt
}  // namespace runtime
}  // namespace torch_tensorrt_rtx
