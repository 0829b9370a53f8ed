// Registers the C++ runtime with torch:
//   torch.ops.tensorrt_rtx.execute_engine(Tensor[] inputs, Tensor packed_record,
//       str output_spec) -> Tensor[]   the op saved programs call (schema and name from
//       definitions.toml), registered only when this library has a TensorRT backend that can
//       run engines; otherwise Python registers it (dynamo/_engine_op.py).
//   torch.classes.tensorrt.Engine(record: list[str|bytes])   the serving handle: pickleable,
//       printable, per-engine settings (set_runtime_settings, get_runtime_settings, ...)
//   torch.ops.tensorrt.execute_engine(Tensor[] inputs, Engine engine) -> Tensor[]   serving
//   torch.ops.tensorrt.{set_scope_settings, scope_settings, set_record_engine_overrides,
//       record_engine_overrides, record_engine_settings, record_engine_applied_settings,
//       save_record_engine_caches, record_engine_weight_streaming,
//       set_record_engine_weight_streaming_budget, mark_record_engine_for_refit}
//   torch.ops.tensorrt.{runtime_backend, engine_op_registered}
// Both execute ops run RecordEngine::Execute. Settings cross in one encoding: lists of
// "name=value" entries (SettingsOverrides::Parse, ToEntries).
// The Engine class has no fake (tracing) implementation: saved programs call the engine op
// above, never the Engine class.
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <torch/custom_class.h>
#include <torch/library.h>

#include "core/definitions/engine_op.h"
#include "core/runtime/engine_class.h"
#include "core/runtime/engine_record.h"
#include "core/runtime/record_engine.h"

namespace torch_tensorrt_rtx {
namespace runtime {

namespace {

// output_spec: the fake kernel's output shapes; read here only for a weightless engine's
// weight names, when it needs a refit.
std::vector<at::Tensor> ExecuteEngineFromRecord(std::vector<at::Tensor> inputs,
                                                at::Tensor packed_record,
                                                std::string output_spec) {
  return ExecuteRecordEngine(inputs, packed_record, &output_spec);
}

// tensorrt_rtx::execute_engine, registered when the library is loaded -- but only if it
// can run engines: a build without TensorRT leaves the op to the Python runtime, which
// can still run engines through the tensorrt_rtx Python package.
struct EngineOpRegistration {
  EngineOpRegistration() {
    if (std::string(trt::DefaultBackendName()) == "none") return;
    library = std::make_unique<torch::Library>(torch::Library::FRAGMENT,
                                               definitions::kEngineOpNamespace, std::nullopt,
                                               __FILE__, __LINE__);
    library->def(definitions::kEngineOpSchema);
    const std::string name = std::string(definitions::kEngineOpName)
                                 .substr(std::strlen(definitions::kEngineOpNamespace) + 2);
    library->impl(name.c_str(),
                  torch::dispatch(c10::DispatchKey::CompositeExplicitAutograd,
                                  TORCH_FN(ExecuteEngineFromRecord)));
  }
  std::unique_ptr<torch::Library> library;
};
const EngineOpRegistration kEngineOpRegistration;

std::vector<at::Tensor> ExecuteEngineOp(std::vector<at::Tensor> inputs,
                                        c10::intrusive_ptr<EngineClass> engine) {
  return engine->record_engine().Execute(inputs);
}

}  // namespace

TORCH_LIBRARY(tensorrt, m) {
  using Self = const c10::intrusive_ptr<EngineClass>&;
  m.class_<EngineClass>("Engine")
      .def(torch::init([](std::vector<std::string> record) {
        return c10::make_intrusive<EngineClass>(EngineRecord::FromList(std::move(record)));
      }))
      .def("__str__", &EngineClass::Str)
      .def("__repr__", &EngineClass::Str)
      .def("packed_record", &EngineClass::PackedRecord)
      .def("name", [](Self self) { return self->engine().name(); })
      .def("input_names", [](Self self) { return self->engine().input_names(); })
      .def("output_names", [](Self self) { return self->engine().output_names(); })
      .def("set_runtime_settings", &EngineClass::SetRuntimeSettings)
      .def("get_runtime_settings", &EngineClass::GetRuntimeSettings)
      .def("set_profiling", [](Self self, bool enabled) { self->engine().SetProfiling(enabled); })
      .def("save_runtime_cache", [](Self self) { return self->engine().SaveRuntimeCache(); })
      // Weight streaming (engines compiled with enable_weight_streaming=True): bytes of
      // streamable weights, the budget of them kept on the GPU (setting it drops the execution
      // context; the next run makes a new one) and TensorRT-RTX's automatic budget.
      .def("streamable_weights_size", [](Self self) { return self->engine().StreamableWeightsSize(); })
      .def("weight_streaming_budget", [](Self self) { return self->engine().WeightStreamingBudget(); })
      .def("set_weight_streaming_budget",
           [](Self self, int64_t bytes) { self->engine().SetWeightStreamingBudget(bytes); })
      .def("weight_streaming_automatic_budget",
           [](Self self) { return self->engine().WeightStreamingAutomaticBudget(); })
      // State is the packed record (a uint8 tensor): Python's pickle, torch.save and
      // torch.export can all carry it, and the Python runtime reads the same bytes.
      .def_pickle([](Self self) -> at::Tensor { return self->PackedRecord(); },
                  [](at::Tensor packed) -> c10::intrusive_ptr<EngineClass> {
                    return c10::make_intrusive<EngineClass>(UnpackRecordTensor(packed));
                  });

  m.def("execute_engine(Tensor[] inputs, __torch__.torch.classes.tensorrt.Engine engine) -> Tensor[]");
  m.def("runtime_backend() -> str", [] { return std::string(trt::DefaultBackendName()); });
  m.def("engine_op_registered() -> bool",
        [] { return kEngineOpRegistration.library != nullptr; });

  // Settings of the engines: the thread's scope, set when a runtime.settings(...) scope is
  // entered or left, and per-engine overrides of saved programs' engines.
  m.def("set_scope_settings(str[] settings) -> ()", [](std::vector<std::string> entries) {
    SetScopeSettings(SettingsOverrides::Parse(entries).ApplyTo(RuntimeSettings{}));
  });
  m.def("scope_settings() -> str[]", [] { return ToEntries(ScopeSettings()); });
  m.def("set_record_engine_overrides(Tensor packed_record, str[] overrides) -> ()",
        [](const at::Tensor& packed_record, std::vector<std::string> overrides) {
          RecordEngine::For(packed_record).SetOverrides(SettingsOverrides::Parse(overrides));
        });
  m.def("record_engine_overrides(Tensor packed_record) -> str[]", [](const at::Tensor& packed) {
    RecordEngine* engine = RecordEngine::Find(packed);
    return engine ? engine->overrides().ToEntries() : std::vector<std::string>{};
  });
  // The settings the engine of `packed_record` would run with on this thread; [] if no
  // call has built that engine yet.
  m.def("record_engine_settings(Tensor packed_record) -> str[]", [](const at::Tensor& packed) {
    RecordEngine* engine = RecordEngine::Find(packed);
    return engine ? ToEntries(engine->EffectiveSettings()) : std::vector<std::string>{};
  });
  // The settings the engine's execution context was last configured with; [] if none.
  m.def("record_engine_applied_settings(Tensor packed_record) -> str[]",
        [](const at::Tensor& packed) {
          RecordEngine* engine = RecordEngine::Find(packed);
          return engine ? ToEntries(engine->engine().settings()) : std::vector<std::string>{};
        });
  // Weight streaming of a saved program's engine: [streamable bytes, budget, automatic budget].
  m.def("record_engine_weight_streaming(Tensor packed_record) -> int[]", [](const at::Tensor& packed) {
    TRTEngine& engine = RecordEngine::For(packed).engine();
    return std::vector<int64_t>{engine.StreamableWeightsSize(), engine.WeightStreamingBudget(),
                                engine.WeightStreamingAutomaticBudget()};
  });
  m.def("set_record_engine_weight_streaming_budget(Tensor packed_record, int budget) -> ()",
        [](const at::Tensor& packed, int64_t budget) {
          RecordEngine::For(packed).engine().SetWeightStreamingBudget(budget);
        });
  // refit_module_weights changed the program's weights: the engine refits before its next run.
  // False when no call has built the engine yet (its first run refits anyway).
  m.def("mark_record_engine_for_refit(Tensor packed_record) -> bool", [](const at::Tensor& packed) {
    RecordEngine* engine = RecordEngine::Find(packed);
    if (engine != nullptr) engine->engine().MarkForRefit();
    return engine != nullptr;
  });
  m.def("save_record_engine_caches() -> int",
        [] { return static_cast<int64_t>(SaveAllRecordEngineCaches()); });
}

TORCH_LIBRARY_IMPL(tensorrt, CompositeExplicitAutograd, m) {
  m.impl("execute_engine", ExecuteEngineOp);
}

}  // namespace runtime
}  // namespace torch_tensorrt_rtx
