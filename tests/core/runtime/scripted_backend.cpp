#include "tests/core/runtime/scripted_backend.h"

#include "core/definitions/engine_record_layout.h"

#include <atomic>
#include <cstring>
#include <algorithm>
#include <map>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace torch_tensorrt_rtx {
namespace testing {

namespace trt = rt::trt;

void CallLog::Add(std::string call) {
  std::lock_guard<std::mutex> guard(mutex_);
  calls_.push_back(std::move(call));
}

std::vector<std::string> CallLog::calls() const {
  std::lock_guard<std::mutex> guard(mutex_);
  return calls_;
}

void CallLog::Clear() {
  std::lock_guard<std::mutex> guard(mutex_);
  calls_.clear();
}

int CallLog::Find(const std::string& prefix, int from) const {
  std::lock_guard<std::mutex> guard(mutex_);
  for (int i = from; i < static_cast<int>(calls_.size()); ++i) {
    if (calls_[i].compare(0, prefix.size(), prefix) == 0) return i;
  }
  return -1;
}

int CallLog::Count(const std::string& prefix) const {
  std::lock_guard<std::mutex> guard(mutex_);
  int n = 0;
  for (const auto& c : calls_) n += c.compare(0, prefix.size(), prefix) == 0;
  return n;
}

std::string ScriptedEngineBytes(const std::vector<std::string>& inputs,
                                const std::vector<std::string>& outputs,
                                const std::vector<std::pair<std::string, int64_t>>& weights) {
  std::string out = kScriptedEngineMagic;
  for (const auto& n : inputs) out += "input " + n + "\n";
  for (const auto& n : outputs) out += "output " + n + "\n";
  for (const auto& w : weights) out += "weight " + w.first + " " + std::to_string(w.second) + "\n";
  return out;
}

std::vector<std::string> MakeRecordList(const std::string& name, std::string engine_bytes,
                                        const std::vector<std::string>& inputs,
                                        const std::vector<std::string>& outputs) {
  namespace layout = rt::layout;
  auto join = [](const std::vector<std::string>& v) {
    std::string out;
    for (std::size_t i = 0; i < v.size(); ++i) out += (i ? layout::kSeparator : "") + v[i];
    return out;
  };
  std::vector<std::string> fields(layout::kNumFields, layout::kSentinel);
  fields[layout::ABI_VERSION] = layout::kAbiVersionText;
  fields[layout::NAME] = name;
  fields[layout::ENGINE] = std::move(engine_bytes);
  fields[layout::INPUT_BINDING_NAMES] = join(inputs);
  fields[layout::OUTPUT_BINDING_NAMES] = join(outputs);
  fields[layout::COMPUTE_CAPABILITIES] = layout::kPortable;
  fields[layout::ENGINE_FLAVOR] = "tensorrt_rtx";
  return fields;
}

std::string ScriptedCacheBytes(const std::set<std::string>& kernels) {
  if (kernels.empty()) return "";
  std::string out = kScriptedCacheMagic;
  for (const auto& k : kernels) out += k + "\n";
  return out;
}

namespace {

std::atomic<int> g_live_engines{0}, g_live_contexts{0}, g_deserializations{0},
    g_contexts_created{0}, g_refits{0};

// What an engine knows of its weights, shared with its contexts and refitters.
struct ScriptedWeights {
  std::vector<std::pair<std::string, int64_t>> declared;  // name, element count (float32)
  std::map<std::string, std::vector<float>> refitted;     // values of the last refit
  bool refit_fails = false;
  int64_t streamable = 0;
  int64_t budget = 0;
  int live_contexts = 0;
  bool Ready() const { return refitted.size() == declared.size(); }
  float Scale() const { return declared.empty() ? 1.0f : refitted.at(declared[0].first).at(0); }
};

class ScriptedCache final : public trt::RuntimeCache {
 public:
  explicit ScriptedCache(std::shared_ptr<CallLog> log) : log_(std::move(log)) {}
  std::string Serialize() override {
    log_->Add("cache.serialize " + std::to_string(kernels.size()));
    return ScriptedCacheBytes(kernels);
  }
  bool Deserialize(const void* data, std::size_t size) override {
    const std::string text(static_cast<const char*>(data), size);
    const std::size_t magic = std::strlen(kScriptedCacheMagic);
    if (text.compare(0, magic, kScriptedCacheMagic) != 0) {
      log_->Add("cache.deserialize rejected");
      return false;
    }
    std::istringstream lines(text.substr(magic));
    std::string line;
    while (std::getline(lines, line)) {
      if (!line.empty()) kernels.insert(line);
    }
    log_->Add("cache.deserialize " + std::to_string(kernels.size()));
    return true;
  }
  void Reset() override { kernels.clear(); }
  std::set<std::string> kernels;

 private:
  std::shared_ptr<CallLog> log_;
};

class ScriptedConfig final : public trt::RuntimeConfig {
 public:
  explicit ScriptedConfig(std::shared_ptr<CallLog> log) : log_(std::move(log)) {}
  std::unique_ptr<trt::RuntimeCache> CreateRuntimeCache() override {
    log_->Add("config.create_runtime_cache");
    return std::make_unique<ScriptedCache>(log_);
  }
  bool SetRuntimeCache(trt::RuntimeCache& cache) override {
    log_->Add("config.set_runtime_cache");
    cache_ = dynamic_cast<ScriptedCache*>(&cache);
    return cache_ != nullptr;
  }
  void SetStrategies(const rt::StrategySettings& s) override {
    rt::ForEachStrategy(s, [&](const char* setting, const char* const* names, std::size_t, const auto& value) {
      log_->Add(std::string("config.") + setting + " " + names[static_cast<std::size_t>(value)]);
    });
    strategies = s;
  }
  ScriptedCache* cache_ = nullptr;
  // The TensorRT defaults until set: a context made without the strategies shows them.
  rt::StrategySettings strategies;

 private:
  std::shared_ptr<CallLog> log_;
};

class ScriptedContext final : public trt::ExecutionContext {
 public:
  ScriptedContext(std::string engine, std::vector<std::string> inputs,
                  std::vector<std::string> outputs, ScriptedConfig& config,
                  std::shared_ptr<ScriptedWeights> weights, std::shared_ptr<CallLog> log)
      : engine_(std::move(engine)),
        inputs_(std::move(inputs)),
        outputs_(std::move(outputs)),
        kernel_(config.strategies.kernel_strategy),
        allocation_(config.strategies.allocation_strategy),
        cache_(config.cache_),
        weights_(std::move(weights)),
        log_(std::move(log)) {
    ++g_live_contexts;
    ++g_contexts_created;
    ++weights_->live_contexts;
    if (kernel_ == rt::KernelStrategy::kEager) Jit(engine_ + "/eager");
  }
  ~ScriptedContext() override {
    --g_live_contexts;
    --weights_->live_contexts;
  }
  bool SetInputShape(const std::string& name, const trt::Dims& dims) override {
    if (name != inputs_.at(0)) return true;
    shape_ = dims;
    return true;
  }
  // Outputs named "dd_*" are data-dependent: TensorRT reports -1 for such dims before the run.
  trt::Dims GetTensorShape(const std::string& name) override {
    return name.rfind("dd_", 0) == 0 ? trt::Dims{-1} : shape_;
  }
  bool SetTensorAddress(const std::string& name, void* data) override {
    addresses_[name] = data;
    return true;
  }
  bool Enqueue(void*) override {
    std::string key = engine_ + "/";
    std::int64_t n = 1;
    for (auto d : shape_) {
      key += std::to_string(d) + "x";
      n *= d;
    }
    if (kernel_ == rt::KernelStrategy::kLazy) Jit(key);
    if (allocation_ == rt::AllocationStrategy::kUserManaged && !device_memory_) {
      log_->Add("enqueue failed: user_managed allocation without device memory");
      return false;  // what TensorRT does: the context has no scratch memory of its own
    }
    if (!weights_->Ready()) {
      log_->Add("enqueue failed: weightless engine not refitted");
      return false;  // a stripped engine has no weights until refitted
    }
    const float scale = weights_->Scale();
    const float* in = static_cast<const float*>(addresses_.at(inputs_.at(0)));
    for (const auto& out_name : outputs_) {
      // A "dd_*" output holds 2 * the positive input elements (data-dependent); others 2 * input.
      const bool data_dependent = out_name.rfind("dd_", 0) == 0;
      std::vector<float> values;
      for (std::int64_t i = 0; i < n; ++i) {
        if (!data_dependent || in[i] > 0) values.push_back(2.0f * in[i] * scale);
      }
      auto allocator = allocators_.find(out_name);
      float* out = nullptr;
      if (allocator != allocators_.end()) {
        out = static_cast<float*>(allocator->second->Reallocate(out_name, values.size() * sizeof(float), 16));
        if (out == nullptr) return false;
        allocator->second->NotifyShape(out_name, data_dependent ? trt::Dims{static_cast<int64_t>(values.size())}
                                                                : shape_);
      } else if (!data_dependent) {
        out = static_cast<float*>(addresses_.at(out_name));
      } else {
        log_->Add("enqueue failed: data-dependent output " + out_name + " without an output allocator");
        return false;  // what TensorRT does
      }
      std::copy(values.begin(), values.end(), out);
    }
    return true;
  }
  void SetProfiling(bool enabled) override {
    log_->Add(std::string("context.profiling ") + (enabled ? "on" : "off"));
  }
  // The scratch memory of a context: 64 bytes per element of input 0.
  int64_t DeviceMemorySizeForShapes() override {
    int64_t n = 64;
    for (auto d : shape_) n *= d;
    return n;
  }
  void SetDeviceMemory(void* data, int64_t size) override {
    log_->Add("context.set_device_memory " + std::to_string(size));
    device_memory_ = data != nullptr && size >= DeviceMemorySizeForShapes();
  }
  bool SetCommunicator(void*) override {
    log_->Add("context.set_communicator");
    return true;
  }
  bool SetOutputAllocator(const std::string& name, trt::OutputAllocator* allocator) override {
    log_->Add("context.set_output_allocator " + name);
    allocators_[name] = allocator;
    return true;
  }

 private:
  void Jit(const std::string& key) {
    if (cache_ != nullptr && cache_->kernels.count(key)) return;
    log_->Add("jit " + key);
    if (cache_ != nullptr) cache_->kernels.insert(key);
  }
  std::string engine_;
  std::vector<std::string> inputs_, outputs_;
  std::map<std::string, trt::OutputAllocator*> allocators_;
  rt::KernelStrategy kernel_;
  rt::AllocationStrategy allocation_;
  ScriptedCache* cache_;
  std::shared_ptr<ScriptedWeights> weights_;
  std::shared_ptr<CallLog> log_;
  trt::Dims shape_;
  bool device_memory_ = false;
  std::map<std::string, void*> addresses_;
};

class ScriptedRefitter final : public trt::Refitter {
 public:
  ScriptedRefitter(std::shared_ptr<ScriptedWeights> weights, std::shared_ptr<CallLog> log)
      : weights_(std::move(weights)), log_(std::move(log)) {}
  std::vector<std::string> AllWeights() override {
    std::vector<std::string> names;
    for (const auto& w : weights_->declared) names.push_back(w.first);
    return names;
  }
  bool SetNamedWeights(const std::string& name, const trt::WeightsView& weights) override {
    auto declared = std::find_if(weights_->declared.begin(), weights_->declared.end(),
                                 [&](const auto& w) { return w.first == name; });
    if (declared == weights_->declared.end() || weights.type != trt::DataType::kFloat ||
        weights.count != declared->second) {
      log_->Add("refitter.set_named_weights " + name + " refused");
      return false;
    }
    log_->Add("refitter.set_named_weights " + name);
    const float* values = static_cast<const float*>(weights.values);
    pending_[name].assign(values, values + weights.count);
    return true;
  }
  std::vector<std::string> MissingWeights() override {
    std::vector<std::string> missing;
    for (const auto& w : weights_->declared) {
      if (!pending_.count(w.first)) missing.push_back(w.first);
    }
    return missing;
  }
  bool Refit(void* stream) override {
    if (!MissingWeights().empty() || weights_->refit_fails) {
      log_->Add("refitter.refit failed");
      return false;
    }
    log_->Add(std::string("refitter.refit") + (stream ? " async" : ""));
    ++g_refits;
    for (auto& p : pending_) weights_->refitted[p.first] = p.second;
    return true;
  }

 private:
  std::shared_ptr<ScriptedWeights> weights_;
  std::shared_ptr<CallLog> log_;
  std::map<std::string, std::vector<float>> pending_;
};

class ScriptedEngine final : public trt::Engine {
 public:
  ScriptedEngine(std::string name, std::vector<std::string> inputs,
                 std::vector<std::string> outputs,
                 std::map<std::string, std::pair<trt::Dims, trt::Dims>> ranges,
                 std::shared_ptr<ScriptedWeights> weights, std::shared_ptr<CallLog> log)
      : name_(std::move(name)), inputs_(std::move(inputs)), outputs_(std::move(outputs)),
        ranges_(std::move(ranges)), weights_(std::move(weights)), log_(std::move(log)) {
    ++g_live_engines;
    ++g_deserializations;
  }
  ~ScriptedEngine() override { --g_live_engines; }
  int NumIOTensors() const override { return static_cast<int>(inputs_.size() + outputs_.size()); }
  std::string IOTensorName(int i) const override {
    return i < static_cast<int>(inputs_.size()) ? inputs_[i] : outputs_.at(i - inputs_.size());
  }
  bool IsInput(const std::string& name) const override {
    for (const auto& n : inputs_) if (n == name) return true;
    return false;
  }
  trt::DataType TensorDataType(const std::string&) const override { return trt::DataType::kFloat; }
  trt::Dims ProfileMin(const std::string& name) const override {
    auto it = ranges_.find(name);
    return it == ranges_.end() ? trt::Dims{} : it->second.first;
  }
  trt::Dims ProfileMax(const std::string& name) const override {
    auto it = ranges_.find(name);
    return it == ranges_.end() ? trt::Dims{} : it->second.second;
  }
  std::unique_ptr<trt::RuntimeConfig> CreateRuntimeConfig() override {
    log_->Add("engine.create_runtime_config");
    return std::make_unique<ScriptedConfig>(log_);
  }
  std::unique_ptr<trt::Refitter> CreateRefitter() override {
    log_->Add("engine.create_refitter");
    if (weights_->declared.empty()) return nullptr;  // built without REFIT
    return std::make_unique<ScriptedRefitter>(weights_, log_);
  }
  int64_t StreamableWeightsSize() const override { return weights_->streamable; }
  int64_t WeightStreamingBudget() const override { return weights_->budget; }
  bool SetWeightStreamingBudget(int64_t bytes) override {
    if (bytes < 0 || weights_->live_contexts > 0) {
      log_->Add("engine.set_weight_streaming_budget " + std::to_string(bytes) + " refused");
      return false;
    }
    weights_->budget = std::min(bytes, weights_->streamable);
    log_->Add("engine.set_weight_streaming_budget " + std::to_string(weights_->budget));
    return true;
  }
  int64_t WeightStreamingAutomaticBudget() const override { return weights_->streamable / 2; }

 private:
  std::unique_ptr<trt::ExecutionContext> CreateExecutionContext(trt::RuntimeConfig& config) override {
    auto& scripted = dynamic_cast<ScriptedConfig&>(config);
    const rt::StrategySettings& s = scripted.strategies;
    log_->Add(std::string("engine.create_execution_context kernel=") + rt::Name(s.kernel_strategy) +
              " graph=" + rt::Name(s.cuda_graph_strategy) + " allocation=" +
              rt::Name(s.allocation_strategy) + " cache=" + (scripted.cache_ ? "yes" : "no"));
    return std::make_unique<ScriptedContext>(name_, inputs_, outputs_, scripted, weights_, log_);
  }
  std::string name_;
  std::vector<std::string> inputs_, outputs_;
  std::map<std::string, std::pair<trt::Dims, trt::Dims>> ranges_;
  std::shared_ptr<ScriptedWeights> weights_;
  std::shared_ptr<CallLog> log_;
};

// "1x4" -> {1, 4}.
trt::Dims ParseDims(const std::string& text) {
  trt::Dims dims;
  std::istringstream parts(text);
  std::string part;
  while (std::getline(parts, part, 'x')) dims.push_back(std::stoll(part));
  return dims;
}

}  // namespace

ScriptedStats Stats() {
  return {g_live_engines.load(), g_live_contexts.load(), g_deserializations.load(),
          g_contexts_created.load(), g_refits.load()};
}

ScriptedRuntime::ScriptedRuntime(std::shared_ptr<CallLog> log) : log_(std::move(log)) {}

std::unique_ptr<trt::Engine> ScriptedRuntime::DeserializeEngine(const std::string& engine_name,
                                                                const std::string& bytes) {
  log_->Add("runtime.deserialize " + engine_name);
  const std::size_t magic = std::strlen(kScriptedEngineMagic);
  if (bytes.compare(0, magic, kScriptedEngineMagic) != 0) {
    throw std::runtime_error("engine '" + engine_name + "': " + std::to_string(bytes.size()) +
                             " bytes are not a scripted engine");
  }
  std::vector<std::string> inputs, outputs;
  std::map<std::string, std::pair<trt::Dims, trt::Dims>> ranges;
  auto weights = std::make_shared<ScriptedWeights>();
  std::istringstream lines(bytes.substr(magic));
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::string kind, name, min, max;
    if (!(words >> kind >> name)) continue;
    if (kind == "input") {
      inputs.push_back(name);
      if (words >> min >> max) ranges[name] = {ParseDims(min), ParseDims(max)};
    } else if (kind == "output") {
      outputs.push_back(name);
    } else if (kind == "weight" && words >> min) {
      weights->declared.emplace_back(name, std::stoll(min));
    } else if (kind == "streamable") {
      weights->streamable = weights->budget = std::stoll(name);
    } else if (kind == "refit" && name == "fails") {
      weights->refit_fails = true;
    }
  }
  return std::make_unique<ScriptedEngine>(engine_name, inputs, outputs, std::move(ranges),
                                          std::move(weights), log_);
}

trt::EngineVerdict ScriptedRuntime::CheckEngine(const std::string& bytes) {
  if (bytes.compare(0, std::strlen(kScriptedEngineMagic), kScriptedEngineMagic) != 0) {
    return trt::EngineVerdict::kMalformed;
  }
  if (bytes.find("\nverdict unsupported_cc\n") != std::string::npos) {
    return trt::EngineVerdict::kUnsupportedComputeCapability;
  }
  return trt::EngineVerdict::kUsable;
}

}  // namespace testing
}  // namespace torch_tensorrt_rtx
