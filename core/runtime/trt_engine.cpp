#include "core/runtime/trt_engine.h"

#include <sstream>
#include <stdexcept>

#include "core/runtime/engine_contract.h"
#include "core/runtime/log.h"

namespace torch_tensorrt_rtx {
namespace runtime {

TRTEngine::TRTEngine(EngineRecord record, std::shared_ptr<trt::Runtime> runtime,
                     RuntimeSettings settings, std::chrono::milliseconds lock_timeout)
    : record_(std::move(record)),
      input_names_(record_.input_names()),
      output_names_(record_.output_names()),
      runtime_(std::move(runtime)),
      config_(Sha256(record_.engine_bytes().data(), record_.engine_bytes().size()),
              std::move(settings), lock_timeout) {}

TRTEngine::~TRTEngine() {
  // The context and cache must go (and the cache be saved) while the engine is alive.
  config_.Release();
}

RuntimeSettings TRTEngine::settings() const {
  std::lock_guard<std::mutex> guard(mutex_);
  return config_.settings();
}

void TRTEngine::UpdateSettings(const RuntimeSettings& settings) {
  std::lock_guard<std::mutex> guard(mutex_);
  UpdateSettingsLocked(settings);
}

void TRTEngine::UpdateSettingsLocked(const RuntimeSettings& settings) {
  config_.UpdateSettings(settings);
}

void TRTEngine::SetProfiling(bool enabled) {
  std::lock_guard<std::mutex> guard(mutex_);
  config_.SetProfiling(enabled);
}

bool TRTEngine::SaveRuntimeCache() noexcept {
  std::lock_guard<std::mutex> guard(mutex_);
  return config_.SaveRuntimeCache();
}

trt::Engine& TRTEngine::Engine() {
  if (engine_ == nullptr) {
    if (runtime_ == nullptr) runtime_ = trt::CreateDefaultRuntime();
    const std::string what = "engine '" + record_.name() + "'";
    switch (runtime_->CheckEngine(record_.engine_bytes())) {
      case trt::EngineVerdict::kMalformed:
        throw std::runtime_error(MalformedEngine(what, record_.engine_bytes().size()));
      case trt::EngineVerdict::kUnsupportedComputeCapability:
        throw std::runtime_error(UnsupportedGpu(what, record_.field(layout::COMPUTE_CAPABILITIES)));
      case trt::EngineVerdict::kUsable:
        break;
    }
    engine_ = runtime_->DeserializeEngine(record_.name(), record_.engine_bytes());
    if (engine_ == nullptr) {
      throw std::runtime_error("engine '" + record_.name() + "': " + runtime_->Name() +
                               " could not deserialize " +
                               std::to_string(record_.engine_bytes().size()) + " engine bytes");
    }
  }
  return *engine_;
}

trt::ExecutionContext& TRTEngine::Context() {
  trt::Engine& engine = Engine();
  if (config_.stale()) {
    bool dynamic = false;
    for (const std::string& input : input_names_) {
      dynamic = dynamic || engine.ProfileMin(input) != engine.ProfileMax(input);
    }
    const std::string warning =
        IncompatibleStrategies("engine '" + record_.name() + "'", config_.settings(), dynamic);
    if (!warning.empty()) LogWarning(warning);
  }
  return config_.Context(engine);
}

void TRTEngine::BindCommunicator(void* communicator) {
  config_.BindCommunicator(Engine(), communicator);
}

void TRTEngine::ReleaseCommunicator() { config_.ReleaseCommunicator(Engine()); }

void TRTEngine::MarkForRefit() {
  std::lock_guard<std::mutex> guard(mutex_);
  refitted_ = false;
}

int64_t TRTEngine::StreamableWeightsSize() {
  std::lock_guard<std::mutex> guard(mutex_);
  return Engine().StreamableWeightsSize();
}

int64_t TRTEngine::WeightStreamingBudget() {
  std::lock_guard<std::mutex> guard(mutex_);
  return Engine().WeightStreamingBudget();
}

int64_t TRTEngine::WeightStreamingAutomaticBudget() {
  std::lock_guard<std::mutex> guard(mutex_);
  return Engine().WeightStreamingAutomaticBudget();
}

void TRTEngine::SetWeightStreamingBudget(int64_t bytes) {
  std::lock_guard<std::mutex> guard(mutex_);
  const std::string what = "engine '" + record_.name() + "'";
  if (bytes < 0) {
    throw std::invalid_argument(what + ": weight streaming budget must be >= 0 bytes, got " +
                                std::to_string(bytes));
  }
  trt::Engine& engine = Engine();
  if (engine.StreamableWeightsSize() == 0) {
    throw std::invalid_argument(what + " has no streamable weights; compile with "
                                "enable_weight_streaming=True");
  }
  config_.DropContext();
  if (!engine.SetWeightStreamingBudget(bytes)) {
    throw std::runtime_error(what + ": " + runtime_->Name() + " refused a weight streaming budget of " +
                             std::to_string(bytes) + " bytes (streamable: " +
                             std::to_string(engine.StreamableWeightsSize()) + " bytes)");
  }
}

std::string TRTEngine::ToString() const {
  auto join = [](const std::vector<std::string>& v) {
    std::string out;
    for (std::size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + v[i];
    return out;
  };
  std::ostringstream os;
  os << "Engine(name=" << record_.name() << ", inputs=[" << join(input_names_)
     << "], outputs=[" << join(output_names_) << "], compute_capabilities="
     << record_.field(layout::COMPUTE_CAPABILITIES)
     << ", flavor=" << record_.optional(layout::ENGINE_FLAVOR).value_or("<unset>")
     << ", engine_bytes=" << record_.engine_bytes().size()
     << ", deserialized=" << (engine_ ? "yes" : "no") << ", settings={"
     << runtime::ToString(config_.settings()) << "})";
  return os.str();
}

}  // namespace runtime
}  // namespace torch_tensorrt_rtx
