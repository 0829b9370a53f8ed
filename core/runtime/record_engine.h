// RecordEngine: the one C++ implementation behind every engine op -- the op saved graphs
// call, tensorrt_rtx::execute_engine(inputs, packed_record, output_spec), and the serving
// op torch.ops.tensorrt.execute_engine(inputs, Engine) (an Engine holds a RecordEngine).
// Also the thread's scoped runtime settings that reach those engines.
//
// Example (C++ serving; Python's runtime.settings(...) does the same through ops):
//
//   ScopedRuntimeSettings scope(settings);            // this thread, until scope ends
//   std::vector<at::Tensor> out = ExecuteRecordEngine({x}, packed_record);
//   RecordEngine::For(packed_record).SetOverrides(overrides);   // this engine only
//
// Contract:
//  - Ownership: the engine is built from the record at the first call and attached to the
//    record tensor's TensorImpl (as its c10::BackendMeta). It lives exactly as long as that
//    tensor -- a constant of the program -- so deleting the program frees the engine, its
//    execution context and runtime cache. Nothing owns engines process-wide; the list
//    used to save every live runtime cache at a scope's end holds weak pointers.
//  - Two programs (two record tensors, even with identical bytes) get independent
//    engines, contexts and overrides. Shallow copies of one tensor (detach) share it.
//  - Settings: the effective settings of a call are the calling thread's scope settings
//    with the engine's overrides applied. They are recomputed only when the scope or the
//    overrides changed since the engine's last call (a generation check), and the context
//    is recreated lazily only when the result differs (TRTRuntimeConfig).
//  - Weightless engines: refitted from the op's trailing weight inputs before the first run of
//    the engine object (and after TRTEngine::MarkForRefit), under the engine's mutex.
//  - Thread-safe: settings are applied and the engine enqueued under the engine's mutex.
#ifndef TORCH_TENSORRT_RTX_CORE_RUNTIME_RECORD_ENGINE_H_
#define TORCH_TENSORRT_RTX_CORE_RUNTIME_RECORD_ENGINE_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <c10/core/TensorImpl.h>

#include "core/runtime/runtime_settings.h"
#include "core/runtime/trt_engine.h"

namespace torch_tensorrt_rtx {
namespace runtime {

// The record in a packed-record tensor (a 1-D uint8 tensor holding EngineRecord::Pack()
// bytes). Throws EngineRecordError for a bad record, c10::Error for a wrong tensor.
EngineRecord UnpackRecordTensor(const at::Tensor& packed);

// The calling thread's scope settings (the defaults until a scope sets them).
const RuntimeSettings& ScopeSettings();
// Replaces the calling thread's scope settings; returns the previous ones.
RuntimeSettings SetScopeSettings(RuntimeSettings settings);

// Sets the thread's scope settings until destruction, then restores the previous ones.
class ScopedRuntimeSettings final {
 public:
  explicit ScopedRuntimeSettings(RuntimeSettings settings)
      : previous_(SetScopeSettings(std::move(settings))) {}
  ~ScopedRuntimeSettings() { SetScopeSettings(std::move(previous_)); }
  ScopedRuntimeSettings(const ScopedRuntimeSettings&) = delete;
  ScopedRuntimeSettings& operator=(const ScopedRuntimeSettings&) = delete;

 private:
  RuntimeSettings previous_;
};

class RecordEngine final : public c10::BackendMeta {
 public:
  // The RecordEngine attached to `packed_record` (a 1-D uint8 CPU tensor holding
  // EngineRecord::Pack() bytes), decoding the record and attaching it on first use.
  // Throws EngineRecordError for a bad record, c10::Error for a wrong tensor.
  static RecordEngine& For(const at::Tensor& packed_record);
  // The attached RecordEngine, or nullptr if no call has built one yet.
  static RecordEngine* Find(const at::Tensor& packed_record);

  // Registers the engine for SaveAllRecordEngineCaches().
  explicit RecordEngine(EngineRecord record);
  ~RecordEngine() override = default;

  TRTEngine& engine() noexcept { return *engine_; }
  // The only place a per-engine override is kept (Python's ProgramEngine and the Engine
  // class hand theirs here).
  void SetOverrides(SettingsOverrides overrides);
  SettingsOverrides overrides() const;
  // The settings the next call uses on this thread.
  RuntimeSettings EffectiveSettings() const;

  // Applies the thread's scope (and the overrides) if either changed, refits a weightless engine
  // from its trailing weight inputs if it needs it (names from `output_spec`, the op's; nullptr
  // for the serving op, which has none: refit_engine.h), then runs.
  std::vector<at::Tensor> Execute(const std::vector<at::Tensor>& inputs,
                                  const std::string* output_spec = nullptr);

 private:
  std::shared_ptr<TRTEngine> engine_;
  mutable std::mutex overrides_mutex_;
  SettingsOverrides overrides_;
  uint64_t overrides_generation_ = 1;
  // Guarded by engine_->mutex(): what the engine's settings were last computed from.
  uint64_t applied_scope_generation_ = 0;
  uint64_t applied_overrides_generation_ = 0;
};

// tensorrt_rtx::execute_engine's implementation: RecordEngine::For(packed_record).Execute.
std::vector<at::Tensor> ExecuteRecordEngine(const std::vector<at::Tensor>& inputs,
                                            const at::Tensor& packed_record,
                                            const std::string* output_spec = nullptr);

// Saves the runtime cache of every live RecordEngine (what a settings scope's end does);
// returns how many were written. Never throws.
int SaveAllRecordEngineCaches() noexcept;

}  // namespace runtime
}  // namespace torch_tensorrt_rtx

#endif  // TORCH_TENSORRT_RTX_CORE_RUNTIME_RECORD_ENGINE_H_
