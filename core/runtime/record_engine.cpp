#include "core/runtime/record_engine.h"

#include <atomic>
#include <stdexcept>
#include <utility>

#include <c10/util/Exception.h>

#include "core/runtime/execute_engine.h"
#include "core/runtime/refit_engine.h"

namespace torch_tensorrt_rtx {
namespace runtime {
namespace {

// Every SetScopeSettings gets a fresh generation; 0 is "the defaults" on every thread.
std::atomic<uint64_t> g_next_scope_generation{1};

struct ThreadScope {
  RuntimeSettings settings;
  uint64_t generation = 0;
};

ThreadScope& CurrentScope() {
  thread_local ThreadScope scope;
  return scope;
}

// Serialises attaching a RecordEngine to a tensor (TensorImpl's extra meta is not
// thread-safe). Holds no engine: engines belong to their tensors.
std::mutex& AttachMutex() {
  static std::mutex mutex;
  return mutex;
}

// Weak pointers to live engines, for SaveAllRecordEngineCaches(); never keeps one alive.
struct LiveEngines {
  std::mutex mutex;
  std::vector<std::weak_ptr<TRTEngine>> engines;

  void Add(const std::shared_ptr<TRTEngine>& engine) {
    std::lock_guard<std::mutex> guard(mutex);
    std::vector<std::weak_ptr<TRTEngine>> alive;
    alive.reserve(engines.size() + 1);
    for (auto& weak : engines) {
      if (!weak.expired()) alive.push_back(std::move(weak));
    }
    alive.push_back(engine);
    engines = std::move(alive);
  }

  std::vector<std::shared_ptr<TRTEngine>> Snapshot() {
    std::lock_guard<std::mutex> guard(mutex);
    std::vector<std::shared_ptr<TRTEngine>> out;
    for (auto& weak : engines) {
      if (auto engine = weak.lock()) out.push_back(std::move(engine));
    }
    return out;
  }
};

LiveEngines& Live() {
  static LiveEngines* live = new LiveEngines();  // never destroyed: engines may outlive exit
  return *live;
}

}  // namespace

EngineRecord UnpackRecordTensor(const at::Tensor& packed) {
  TORCH_CHECK(packed.defined() && packed.scalar_type() == at::kByte && packed.dim() == 1,
              "a packed engine record is a 1-D uint8 tensor, got ",
              packed.defined() ? c10::toString(packed.scalar_type()) : "an undefined tensor",
              " ", packed.defined() ? packed.sizes() : c10::IntArrayRef{});
  const at::Tensor bytes = packed.cpu().contiguous();
  return EngineRecord::Unpack(bytes.data_ptr(), static_cast<std::size_t>(bytes.numel()));
}

const RuntimeSettings& ScopeSettings() { return CurrentScope().settings; }

RuntimeSettings SetScopeSettings(RuntimeSettings settings) {
  ThreadScope& scope = CurrentScope();
  RuntimeSettings previous = std::move(scope.settings);
  scope.settings = std::move(settings);
  scope.generation = g_next_scope_generation.fetch_add(1, std::memory_order_relaxed);
  return previous;
}

RecordEngine::RecordEngine(EngineRecord record)
    : engine_(std::make_shared<TRTEngine>(std::move(record))) {
  Live().Add(engine_);
}

RecordEngine* RecordEngine::Find(const at::Tensor& packed_record) {
  std::lock_guard<std::mutex> guard(AttachMutex());
  c10::TensorImpl* impl = packed_record.unsafeGetTensorImpl();
  return dynamic_cast<RecordEngine*>(impl->get_backend_meta());
}

RecordEngine& RecordEngine::For(const at::Tensor& packed_record) {
  TORCH_CHECK(packed_record.defined(), "execute_engine: packed_record is undefined");
  std::lock_guard<std::mutex> guard(AttachMutex());
  c10::TensorImpl* impl = packed_record.unsafeGetTensorImpl();
  c10::BackendMeta* meta = impl->get_backend_meta();
  if (meta != nullptr) {
    auto* engine = dynamic_cast<RecordEngine*>(meta);
    TORCH_CHECK(engine != nullptr,
                "execute_engine: packed_record carries backend metadata of another library; "
                "expected a plain uint8 tensor holding an engine record");
    return *engine;
  }
  auto engine = c10::make_intrusive<RecordEngine>(UnpackRecordTensor(packed_record));
  RecordEngine& ref = *engine;
  impl->set_backend_meta(std::move(engine));
  return ref;
}

void RecordEngine::SetOverrides(SettingsOverrides overrides) {
  std::lock_guard<std::mutex> guard(overrides_mutex_);
  overrides_ = std::move(overrides);
  ++overrides_generation_;
}

SettingsOverrides RecordEngine::overrides() const {
  std::lock_guard<std::mutex> guard(overrides_mutex_);
  return overrides_;
}

RuntimeSettings RecordEngine::EffectiveSettings() const {
  std::lock_guard<std::mutex> guard(overrides_mutex_);
  return overrides_.ApplyTo(ScopeSettings());
}

std::vector<at::Tensor> RecordEngine::Execute(const std::vector<at::Tensor>& inputs,
                                              const std::string* output_spec) {
  const ThreadScope& scope = CurrentScope();
  std::lock_guard<std::mutex> guard(engine_->mutex());
  uint64_t overrides_generation;
  {
    std::lock_guard<std::mutex> overrides_guard(overrides_mutex_);
    overrides_generation = overrides_generation_;
    if (scope.generation != applied_scope_generation_ ||
        overrides_generation != applied_overrides_generation_) {
      // Only compares settings; the context is recreated at the next Context() if they differ.
      engine_->UpdateSettingsLocked(overrides_.ApplyTo(scope.settings));
      applied_scope_generation_ = scope.generation;
      applied_overrides_generation_ = overrides_generation;
    }
  }
  if (inputs.size() > engine_->input_names().size()) {
    return ExecuteEngineLocked(RefitBeforeRunLocked(inputs, *engine_, output_spec), *engine_);
  }
  return ExecuteEngineLocked(inputs, *engine_);
}

std::vector<at::Tensor> ExecuteRecordEngine(const std::vector<at::Tensor>& inputs,
                                            const at::Tensor& packed_record,
                                            const std::string* output_spec) {
  return RecordEngine::For(packed_record).Execute(inputs, output_spec);
}

int SaveAllRecordEngineCaches() noexcept {
  int saved = 0;
  try {
    for (const auto& engine : Live().Snapshot()) saved += engine->SaveRuntimeCache() ? 1 : 0;
  } catch (...) {  // a cache is an optimisation: never fail the scope's end
  }
  return saved;
}

}  // namespace runtime
}  // namespace torch_tensorrt_rtx
