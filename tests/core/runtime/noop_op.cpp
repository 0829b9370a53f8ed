// Test-only ops of libscripted_runtime_ops.so (the runtime's op registrations linked with
// the scripted backend):
//   torch.ops.ttrx_test.noop(Tensor[] inputs) -> Tensor[]: does nothing; the baseline for
//       the engine ops' dispatch overhead in benchmarks/.
//   torch.ops.ttrx_test.scripted_stats() -> int[]: [live engines, live contexts,
//       deserializations, contexts created] of the scripted backend (lifetime tests).
//   torch.ops.ttrx_test.scripted_backend_us(Tensor x, int calls) -> float[]: per-call time
//       of [the scripted backend alone (bind + enqueue, outputs preallocated),
//       ExecuteEngine called from C++ without the dispatcher] (benchmarks).
#include <chrono>
#include <vector>

#include <torch/library.h>

#include "core/runtime/execute_engine.h"
#include "tests/core/runtime/scripted_backend.h"

namespace {

std::vector<at::Tensor> Noop(std::vector<at::Tensor> inputs) { return inputs; }

std::vector<int64_t> ScriptedStatsOp() {
  const auto s = torch_tensorrt_rtx::testing::Stats();
  return {s.live_engines, s.live_contexts, s.deserializations, s.contexts_created};
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

}  // namespace

TORCH_LIBRARY(ttrx_test, m) {
  m.def("scripted_backend_us(Tensor x, int calls) -> float[]", ScriptedBackendUs);
  m.def("noop(Tensor[] inputs) -> Tensor[]");
  m.def("scripted_stats() -> int[]", ScriptedStatsOp);
}

TORCH_LIBRARY_IMPL(ttrx_test, CompositeExplicitAutograd, m) { m.impl("noop", Noop); }
