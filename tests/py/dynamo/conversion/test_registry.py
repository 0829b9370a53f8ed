"""The converter registry: every module in converters/ is found without a list, in name order,
and a module that fails to import is named; ops on constants alone are folded on the host,
converter or not."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from torch_tensorrt_rtx.dynamo.conversion import converters
from torch_tensorrt_rtx.dynamo.conversion.converters import import_modules

from tests.py.dynamo.conversion.harness import Fn, compile_and_verify


def test_every_converter_module_is_imported():
    on_disk = sorted(p.stem for p in Path(converters.__file__).parent.glob("*.py") if not p.stem.startswith("_"))
    assert len(on_disk) > 20, on_disk
    assert converters.MODULES == on_disk
    missing = [m for m in on_disk if f"{converters.__name__}.{m}" not in sys.modules]
    assert not missing, missing


@pytest.fixture
def fake_package(tmp_path, monkeypatch):
    """A package of three modules importing in name order (each appends its name to `order`),
    a helper module that must not be imported, and one module that raises."""
    name = "trtx_fake_converters"
    package = tmp_path / name
    package.mkdir()
    (package / "__init__.py").write_text("order = []\n")
    for module in ("b_second", "a_first", "c_third"):
        (package / f"{module}.py").write_text(f"from {name} import order\norder.append({module!r})\n")
    (package / "_helpers.py").write_text("raise AssertionError('helpers are imported by the modules using them')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name, package
    for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
        del sys.modules[key]


def test_modules_are_imported_in_name_order(fake_package):
    name, package = fake_package
    assert import_modules(name, [str(package)]) == ["a_first", "b_second", "c_third"]
    assert sys.modules[name].order == ["a_first", "b_second", "c_third"]


def test_a_module_that_fails_to_import_is_named(fake_package):
    name, package = fake_package
    (package / "b_broken.py").write_text("raise RuntimeError('boom in a converter module')\n")
    with pytest.raises(ImportError, match=f"converter module {name}.b_broken failed to import: "
                                          "RuntimeError: boom in a converter module") as caught:
        import_modules(name, [str(package)])
    assert isinstance(caught.value.__cause__, RuntimeError)
    assert sys.modules[name].order == ["a_first"]  # the ones before it were imported, in order


class RelativeIndex(nn.Module):
    """BEiT's relative-position index: int64 arithmetic on buffers (sum over int64 has no
    converter), then a gather of a learned table by that index."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("coords", torch.randint(0, 5, (6, 6, 2)))
        self.table = nn.Parameter(torch.randn(20, 3), requires_grad=False)

    def forward(self, x):
        index = self.coords.sum(-1) * 2 - self.coords[..., 0]      # int64, constants only
        return x + self.table[index].permute(2, 0, 1)


class WeightStandardizedConv(nn.Conv2d):
    """timm's ScaledStdConv2d (NF-ResNet, NFNet): the weight normalized per output channel with
    F.batch_norm(training=True, no running stats) before every convolution."""

    def forward(self, x):
        weight = F.batch_norm(self.weight.reshape(1, self.out_channels, -1), None, None, training=True,
                              momentum=0.0, eps=1e-6).reshape_as(self.weight)
        return F.conv2d(x, weight * 0.5, self.bias, self.stride, self.padding)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_constant_subgraph_folded(dtype):
    module = RelativeIndex().to(dtype)
    _, report, _ = compile_and_verify(module, [torch.randn(2, 3, 6, 6).to(dtype)], full=True)
    assert "aten.sum.dim_IntList" in report.converted_op_counts, report.format()


def test_weight_standardization_folded():
    module = WeightStandardizedConv(3, 8, 3, padding=1)
    _, report, _ = compile_and_verify(module, [torch.randn(2, 3, 8, 8)], expect_ops=["aten.convolution.default"],
                                      full=True)
    assert "aten._native_batch_norm_legit.no_stats" in report.converted_op_counts, report.format()


def test_op_on_graph_input_without_converter_still_falls_back():
    # The same int64 sum, but of a graph input: nothing to fold, it stays in PyTorch with a reason.
    module = Fn(lambda x, i: x + i.sum(-1, keepdim=True).float() * 2)
    _, report, _ = compile_and_verify(module, [torch.randn(3, 4), torch.randint(0, 9, (3, 4))])
    assert "aten.sum.dim_IntList" in report.fallback_ops, report.format()
    assert "torch.int64 tensor: this converter takes" in report.fallback_reasons["aten.sum.dim_IntList"], \
        report.format()  # the validator's Refusal names the dtype it does not take


def test_host_constant_check_on_a_deep_graph():
    # An op without a converter at the end of a long chain: deciding it is not a constant walks
    # back toward the input without recursing node by node (Python's limit is 1000 frames).
    from torch_tensorrt_rtx.dynamo.conversion._registry import lookup

    def chain(x, i):
        for _ in range(1200):
            i = i + 1
        return x + i.sum(-1, keepdim=True).float()

    graph = torch.export.export(Fn(chain), (torch.randn(2, 3), torch.randint(0, 9, (2, 3)))).graph
    total = next(n for n in graph.nodes if n.target == torch.ops.aten.sum.dim_IntList)
    assert lookup(total) is None
