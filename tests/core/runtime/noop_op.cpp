// torch.ops.ttrx_test.noop(Tensor[] inputs) -> Tensor[]: a custom op that does nothing,
// the baseline for execute_engine's dispatch overhead in benchmarks/execute_engine_bench.
#include <vector>

#include <torch/library.h>

namespace {

std::vector<at::Tensor> Noop(std::vector<at::Tensor> inputs) { return inputs; }

}  // namespace

TORCH_LIBRARY(ttrx_test, m) { m.def("noop(Tensor[] inputs) -> Tensor[]"); }

TORCH_LIBRARY_IMPL(ttrx_test, CompositeExplicitAutograd, m) { m.impl("noop", Noop); }
