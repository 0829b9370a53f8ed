// Test-only ops of libscripted_runtime_ops.so (the runtime's op registrations linked with
// the scripted backend):
//   torch.ops.ttrx_test.noop(Tensor[] inputs) -> Tensor[]: does nothing; the baseline for
//       the engine ops' dispatch overhead in benchmarks/.
//   torch.ops.ttrx_test.scripted_stats() -> int[]: [live engines, live contexts,
//       deserializations, contexts created, refits] of the scripted backend (lifetime and
//       refit tests).
//   torch.ops.ttrx_test.scripted_backend_us(Tensor x, int calls) -> float[]: per-call time
//       of [the scripted backend alone (bind + enqueue, outputs preallocated),
//       ExecuteEngine called from C++ without the dispatcher] (benchmarks).
//   torch.ops.ttrx_test.{abi_version, record_length, record_field_names}: the record layout
//       the C++ decoder was generated from; check_record(Tensor packed) -> str: the C++
//       decoder's verdict on packed record bytes ("" if they decode, else the error);
//       record_fields(Tensor packed) -> str[]: the fields it decodes (ENGINE as its size);
//       run_packed_engine(Tensor[] inputs, Tensor packed) -> (name, outputs, packed again):
//       an Engine decoded in C++ from Python's EngineRecord.pack() bytes, run once
//       (cross-runtime tests).
//   torch.ops.ttrx_test.contract_{profile_violation, incompatible_strategies,
//       unsupported_gpu, malformed_engine}: the engine-run contract's messages
//       (core/runtime/engine_contract.h), for the cross-runtime conformance test.
#include <chrono>
#include <tuple>
#include <vector>

#include <torch/library.h>

#include "core/definitions/engine_record_layout.h"
#include "core/runtime/engine_class.h"
#include "core/runtime/engine_contract.h"
#include "core/runtime/execute_engine.h"
#include "tests/core/runtime/scripted_backend.h"

namespace {

std::vector<at::Tensor> Noop(std::vector<at::Tensor> inputs) { return inputs; }

std::vector<int64_t> ScriptedStatsOp() {
  const auto s = torch_tensorrt_rtx::testing::Stats();
  return {s.live_engines, s.live_contexts, s.deserializations, s.contexts_created, s.refits};
}

std::vector<double> ScriptedBackendUs(const at::Tensor& x, int64_t calls) {
  namespace rt = torch_tensorrt_rtx::runtime;
  namespace tt = torch_tensorrt_rtx::testing;
  rt::TRTEngine engine(rt::EngineRecord::FromList(
                           tt::MakeRecordList("bench", tt::ScriptedEngineBytes({"x"}, {"y"}), {"x"}, {"y"})),
                       std::make_shared<tt::ScriptedRuntime>());
  const at::Tensor in = x.contiguous();
  at::Tensor out = at::empty_like(in);
  using Clock = std::chrono::steady_clock;
  auto per_call_us = [&](auto&& fn) {
    fn();
    const auto start = Clock::now();
    for (int64_t i = 0; i < calls; ++i) fn();
    return std::chrono::duration<double, std::micro>(Clock::now() - start).count() / calls;
  };
  std::lock_guard<std::mutex> guard(engine.mutex());
  rt::trt::ExecutionContext& context = engine.Context();
  const double backend = per_call_us([&] {
    context.SetInputShape("x", in.sizes().vec());
    context.SetTensorAddress("x", in.data_ptr());
    context.GetTensorShape("y");
    context.SetTensorAddress("y", out.data_ptr());
    context.Enqueue(nullptr);
  });
  const double execute = per_call_us([&] { rt::ExecuteEngineLocked({in}, engine); });
  return {backend, execute};
}

std::string CheckRecord(const at::Tensor& packed) {
  try {
    torch_tensorrt_rtx::runtime::UnpackRecordTensor(packed);
    return "";
  } catch (const torch_tensorrt_rtx::runtime::EngineRecordError& e) {
    return e.what();
  }
}

}  // namespace

TORCH_LIBRARY(ttrx_test, m) {
  namespace rt = torch_tensorrt_rtx::runtime;
  namespace layout = rt::layout;
  m.def("scripted_backend_us(Tensor x, int calls) -> float[]", ScriptedBackendUs);
  m.def("abi_version() -> str", [] { return std::string(layout::kAbiVersionText); });
  m.def("record_length() -> int", [] { return static_cast<int64_t>(layout::kNumFields); });
  m.def("record_field_names() -> str[]", [] {
    return std::vector<std::string>(layout::kFieldNames, layout::kFieldNames + layout::kNumFields);
  });
  m.def("check_record(Tensor packed) -> str", CheckRecord);
  m.def("record_fields(Tensor packed) -> str[]", [](const at::Tensor& packed) {
    std::vector<std::string> fields = rt::UnpackRecordTensor(packed).ToList();
    fields[layout::ENGINE] = std::to_string(fields[layout::ENGINE].size()) + " bytes";
    return fields;
  });
  m.def("run_packed_engine(Tensor[] inputs, Tensor packed) -> (str, Tensor[], Tensor)",
        [](std::vector<at::Tensor> inputs, const at::Tensor& packed) {
          rt::EngineClass engine(rt::UnpackRecordTensor(packed));
          std::vector<at::Tensor> outputs = engine.record_engine().Execute(inputs);
          return std::make_tuple(engine.engine().name(), std::move(outputs), engine.PackedRecord());
        });
  m.def("contract_profile_violation(str what, str input, int[] shape, int[] min, int[] max) -> str",
        [](std::string what, std::string input, std::vector<int64_t> shape,
           std::vector<int64_t> min, std::vector<int64_t> max) {
          return rt::ProfileViolation(what, input, shape, min, max);
        });
  m.def("contract_incompatible_strategies(str what, str[] settings, bool dynamic) -> str",
        [](std::string what, std::vector<std::string> settings, bool dynamic) {
          return rt::IncompatibleStrategies(
              what, rt::SettingsOverrides::Parse(settings).ApplyTo(rt::RuntimeSettings{}), dynamic);
        });
  m.def("contract_unsupported_gpu(str what, str compute_capabilities) -> str",
        [](std::string what, std::string caps) { return rt::UnsupportedGpu(what, caps); });
  m.def("contract_malformed_engine(str what, int size) -> str", [](std::string what, int64_t size) {
    return rt::MalformedEngine(what, static_cast<std::size_t>(size));
  });
  m.def("noop(Tensor[] inputs) -> Tensor[]");
  m.def("scripted_stats() -> int[]", ScriptedStatsOp);
}

TORCH_LIBRARY_IMPL(ttrx_test, CompositeExplicitAutograd, m) { m.impl("noop", Noop); }
