// EngineClass: torch.classes.tensorrt.Engine, the serving handle on one engine. It holds a
// RecordEngine, so torch.ops.tensorrt.execute_engine(inputs, engine) runs the same code as
// the op of saved programs: the thread's scope settings, then this engine's overrides
// (set_runtime_settings), then the engine-run contract's checks.
//
// Example (C++; Python: torch.classes.tensorrt.Engine(record.to_list())):
//
//   auto engine = c10::make_intrusive<EngineClass>(EngineRecord::FromList(std::move(fields)));
//   engine->SetRuntimeSettings({"kernel_strategy=eager"});
//   std::vector<at::Tensor> out = engine->record_engine().Execute({x});
#ifndef TORCH_TENSORRT_RTX_CORE_RUNTIME_ENGINE_CLASS_H_
#define TORCH_TENSORRT_RTX_CORE_RUNTIME_ENGINE_CLASS_H_

#include <cstring>
#include <string>
#include <vector>

#include <torch/custom_class.h>

#include "core/runtime/record_engine.h"

namespace torch_tensorrt_rtx {
namespace runtime {

class EngineClass final : public torch::CustomClassHolder {
 public:
  explicit EngineClass(EngineRecord record)
      : engine_(c10::make_intrusive<RecordEngine>(std::move(record))) {}

  RecordEngine& record_engine() { return *engine_; }
  TRTEngine& engine() { return engine_->engine(); }
  // Python's EngineRecord.pack() bytes as a uint8 tensor (EngineRecord.from_tensor reads it).
  at::Tensor PackedRecord() const {
    const std::string packed = engine_->engine().record().Pack();
    at::Tensor out = at::empty({static_cast<int64_t>(packed.size())}, at::kByte);
    std::memcpy(out.data_ptr(), packed.data(), packed.size());
    return out;
  }
  std::string Str() const { return engine_->engine().ToString(); }

  // Settings entries (SettingsOverrides::Parse) that replace the scope's for this engine.
  void SetRuntimeSettings(const std::vector<std::string>& entries) {
    engine_->SetOverrides(SettingsOverrides::Parse(entries));
  }
  // The settings this engine's next call on this thread uses, as entries (ToEntries).
  std::vector<std::string> GetRuntimeSettings() const {
    return ToEntries(engine_->EffectiveSettings());
  }

 private:
  c10::intrusive_ptr<RecordEngine> engine_;
};

}  // namespace runtime
}  // namespace torch_tensorrt_rtx

#endif  // TORCH_TENSORRT_RTX_CORE_RUNTIME_ENGINE_CLASS_H_
