// Registers the C++ runtime with torch:
//   torch.ops.tensorrt_rtx.execute_engine(Tensor[] inputs, Tensor packed_record,
//       str output_spec) -> Tensor[]   the op saved programs call (schema and name from
//       definitions.toml), registered only when this library has a TensorRT backend that can
//       run engines; otherwise Python registers it (dynamo/_engine_op.py).
//   torch.ops.tensorrt.{set_scope_settings, scope_settings, set_record_engine_overrides,
//       record_engine_settings, save_record_engine_caches}   settings of those engines
//   torch.classes.tensorrt.Engine(record: list[str|bytes])   pickleable, printable,
//       runtime settings methods (set_runtime_settings, get_runtime_settings, ...)
//   torch.ops.tensorrt.execute_engine(Tensor[] inputs, Engine engine) -> Tensor[]
//   torch.ops.tensorrt.{abi_version, record_length, record_field_names, runtime_backend,
//       check_record}   the record layout, from its single definition, and the decoder's
//       verdict on packed bytes
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
#include "core/definitions/engine_record_layout.h"
#include "core/runtime/engine_record.h"
#include "core/runtime/execute_engine.h"
#include "core/runtime/record_engine.h"
#include "core/runtime/trt_engine.h"

namespace torch_tensorrt_rtx {
namespace runtime {
namespace {

// cache_path: nullopt disables the runtime cache file, "" is the per-user default.
RuntimeSettings SettingsFromNames(c10::optional<std::string> cache_path,
                                  const std::string& kernel_strategy,
                                  const std::string& cuda_graph_strategy,
                                  const std::string& allocation_strategy) {
  RuntimeSettings s;
  s.cache_enabled = cache_path.has_value();
  s.cache_path = cache_path.value_or("");
  s.kernel_strategy = ParseKernelStrategy(kernel_strategy);
  s.cuda_graph_strategy = ParseCudaGraphStrategy(cuda_graph_strategy);
  s.allocation_strategy = ParseAllocationStrategy(allocation_strategy);
  return s;
}

// What every settings getter returns: [cache_path, kernel_strategy, cuda_graph_strategy,
// allocation_strategy, "cache_enabled" or "cache_disabled"] (cache_path "" is the per-user
// default). Python turns it into a runtime.RuntimeSettings (_native.settings_from_names).
std::vector<std::string> SettingsNames(const RuntimeSettings& s) {
  return {s.cache_path, Name(s.kernel_strategy), Name(s.cuda_graph_strategy),
          Name(s.allocation_strategy), s.cache_enabled ? "cache_enabled" : "cache_disabled"};
}

// The torch-visible Engine: a handle on a TRTEngine.
class EngineClass final : public torch::CustomClassHolder {
 public:
  explicit EngineClass(std::vector<std::string> record)
      : EngineClass(EngineRecord::FromList(std::move(record))) {}
  explicit EngineClass(EngineRecord record)
      : engine_(std::make_shared<TRTEngine>(std::move(record))) {}

  TRTEngine& engine() { return *engine_; }
  // Python's EngineRecord.pack() bytes as a uint8 tensor (EngineRecord.from_tensor reads it);
  // Python str cannot carry the binary engine bytes, so this is the Python-facing form.
  at::Tensor PackedRecord() const {
    const std::string packed = engine_->record().Pack();
    at::Tensor out = at::empty({static_cast<int64_t>(packed.size())}, at::kByte);
    std::memcpy(out.data_ptr(), packed.data(), packed.size());
    return out;
  }
  std::string Str() const { return engine_->ToString(); }

  // cache_path: None disables the runtime cache file, "" is the per-user default.
  void SetRuntimeSettings(c10::optional<std::string> cache_path, std::string kernel_strategy,
                          std::string cuda_graph_strategy, std::string allocation_strategy) {
    engine_->UpdateSettings(SettingsFromNames(std::move(cache_path), kernel_strategy,
                                              cuda_graph_strategy, allocation_strategy));
  }

  std::vector<std::string> GetRuntimeSettings() const {
    return SettingsNames(engine_->settings());
  }

 private:
  std::shared_ptr<TRTEngine> engine_;
};

EngineRecord UnpackTensor(const at::Tensor& packed) {
  TORCH_CHECK(packed.scalar_type() == at::kByte && packed.dim() == 1,
              "a packed engine record is a 1-D uint8 tensor, got ", packed.scalar_type(), " ",
              packed.sizes());
  const at::Tensor bytes = packed.cpu().contiguous();
  return EngineRecord::Unpack(bytes.data_ptr(), static_cast<std::size_t>(bytes.numel()));
}

std::vector<at::Tensor> ExecuteEngineOp(std::vector<at::Tensor> inputs,
                                        c10::intrusive_ptr<EngineClass> engine) {
  return ExecuteEngine(inputs, engine->engine());
}

// The decoder's verdict on packed record bytes: "" if they decode, else the error.
std::string CheckRecord(const at::Tensor& packed) {
  try {
    UnpackTensor(packed);
    return "";
  } catch (const EngineRecordError& e) {
    return e.what();
  }
}

std::vector<at::Tensor> ExecuteEngineFromRecord(std::vector<at::Tensor> inputs,
                                                at::Tensor packed_record,
                                                std::string /*output_spec: for fake kernels*/) {
  return ExecuteRecordEngine(inputs, packed_record);
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

}  // namespace

TORCH_LIBRARY(tensorrt, m) {
  m.class_<EngineClass>("Engine")
      .def(torch::init<std::vector<std::string>>())
      .def("__str__", &EngineClass::Str)
      .def("__repr__", &EngineClass::Str)
      .def("packed_record", &EngineClass::PackedRecord)
      .def("name", [](const c10::intrusive_ptr<EngineClass>& self) {
        return self->engine().name();
      })
      .def("input_names", [](const c10::intrusive_ptr<EngineClass>& self) {
        return self->engine().input_names();
      })
      .def("output_names", [](const c10::intrusive_ptr<EngineClass>& self) {
        return self->engine().output_names();
      })
      .def("set_runtime_settings", &EngineClass::SetRuntimeSettings)
      .def("get_runtime_settings", &EngineClass::GetRuntimeSettings)
      .def("set_profiling", [](const c10::intrusive_ptr<EngineClass>& self, bool enabled) {
        self->engine().SetProfiling(enabled);
      })
      .def("save_runtime_cache", [](const c10::intrusive_ptr<EngineClass>& self) {
        return self->engine().SaveRuntimeCache();
      })
      // State is the packed record (a uint8 tensor): Python's pickle, torch.save and
      // torch.export can all carry it, and the Python runtime reads the same bytes.
      .def_pickle(
          [](const c10::intrusive_ptr<EngineClass>& self) -> at::Tensor {
            return self->PackedRecord();
          },
          [](at::Tensor packed) -> c10::intrusive_ptr<EngineClass> {
            return c10::make_intrusive<EngineClass>(UnpackTensor(packed));
          });

  m.def("execute_engine(Tensor[] inputs, __torch__.torch.classes.tensorrt.Engine engine) -> Tensor[]");
  // Python's EngineRecord.pack() bytes (a uint8 tensor) -> Engine, decoded in C++.
  m.def("engine_from_packed(Tensor packed) -> __torch__.torch.classes.tensorrt.Engine",
        [](const at::Tensor& packed) { return c10::make_intrusive<EngineClass>(UnpackTensor(packed)); });
  m.def("abi_version() -> str", [] { return std::string(layout::kAbiVersionText); });
  m.def("record_length() -> int", [] { return static_cast<int64_t>(layout::kNumFields); });
  m.def("record_field_names() -> str[]", [] {
    return std::vector<std::string>(layout::kFieldNames, layout::kFieldNames + layout::kNumFields);
  });
  m.def("runtime_backend() -> str", [] { return std::string(trt::DefaultBackendName()); });
  m.def("check_record(Tensor packed) -> str", CheckRecord);
  // The engine op's C++ kernel under a second name: benchmarks call it directly, and
  // torch_tensorrt_rtx.verify's interceptor forwards other threads' calls to it.
  m.def("execute_record_engine(Tensor[] inputs, Tensor packed_record) -> Tensor[]",
        [](std::vector<at::Tensor> inputs, at::Tensor packed_record) {
          return ExecuteRecordEngine(inputs, packed_record);
        });
  m.def("engine_op_registered() -> bool",
        [] { return kEngineOpRegistration.library != nullptr; });

  // Settings of the engines saved programs run (RecordEngine): the thread's scope, set when
  // a runtime.settings(...) scope is entered or left, and per-engine overrides.
  // cache_path: None disables the runtime cache file, "" is the per-user default.
  m.def("set_scope_settings(str? cache_path, str kernel_strategy, str cuda_graph_strategy, "
        "str allocation_strategy) -> ()",
        [](c10::optional<std::string> cache_path, std::string kernel, std::string cuda_graph,
           std::string allocation) {
          SetScopeSettings(SettingsFromNames(std::move(cache_path), kernel, cuda_graph, allocation));
        });
  m.def("scope_settings() -> str[]", [] { return SettingsNames(ScopeSettings()); });
  m.def("set_record_engine_overrides(Tensor packed_record, str[] overrides) -> ()",
        [](const at::Tensor& packed_record, std::vector<std::string> overrides) {
          RecordEngine::For(packed_record).SetOverrides(SettingsOverrides::Parse(overrides));
        });
  // The settings the engine of `packed_record` would run with on this thread; [] if no
  // call has built that engine yet.
  m.def("record_engine_settings(Tensor packed_record) -> str[]", [](const at::Tensor& packed) {
    RecordEngine* engine = RecordEngine::Find(packed);
    return engine ? SettingsNames(engine->EffectiveSettings()) : std::vector<std::string>{};
  });
  // The settings the engine's execution context was last configured with; [] if none.
  m.def("record_engine_applied_settings(Tensor packed_record) -> str[]",
        [](const at::Tensor& packed) {
          RecordEngine* engine = RecordEngine::Find(packed);
          return engine ? SettingsNames(engine->engine().settings())
                        : std::vector<std::string>{};
        });
  m.def("save_record_engine_caches() -> int",
        [] { return static_cast<int64_t>(SaveAllRecordEngineCaches()); });
}

TORCH_LIBRARY_IMPL(tensorrt, CompositeExplicitAutograd, m) {
  m.impl("execute_engine", ExecuteEngineOp);
}

}  // namespace runtime
}  // namespace torch_tensorrt_rtx
