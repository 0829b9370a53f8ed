// Test-only ops of libscripted_runtime_ops.so (the runtime's op registrations linked with
// the scripted backend):
//   torch.ops.ttrx_test.noop(Tensor[] inputs) -> Tensor[]: does nothing; the baseline for
//       the engine ops' dispatch overhead in benchmarks/.
//   torch.ops.ttrx_test.scripted_stats() -> int[]: [live engines, live contexts,
//       deserializations, contexts created] of the scripted backend (lifetime tests).
#include <vector>

#include <torch/library.h>

#include "tests/core/runtime/scripted_backend.h"

namespace {

std::vector<at::Tensor> Noop(std::vector<at::Tensor> inputs) { return inputs; }

std::vector<int64_t> ScriptedStatsOp() {
  const auto s = torch_tensorrt_rtx::testing::Stats();
  return {s.live_engines, s.live_contexts, s.deserializations, s.contexts_created};
}

}  // namespace

TORCH_LIBRARY(ttrx_test, m) {
  m.def("noop(Tensor[] inputs) -> Tensor[]");
  m.def("scripted_stats() -> int[]", ScriptedStatsOp);
}

TORCH_LIBRARY_IMPL(ttrx_test, CompositeExplicitAutograd, m) { m.impl("noop", Noop); }
