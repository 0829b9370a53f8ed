"""compile(..., strip_engine_weights=True / immutable_weights=False): builder flags, packaging (each
weight once, as a program buffer passed to the engine op), verify with the program's weights and
refit_module_weights on CPU through the reference executor.

TensorRT-RTX 1.7 cannot build REFIT/STRIP_PLAN engines without a CUDA GPU (measured), so the
packaging tests build the same network without those two flags (``refit_flags`` patched out);
everything else is the real path. The flags themselves run in scripts/rtx_acceptance.sh."""
from __future__ import annotations

import json
import warnings

import pytest
import tensorrt_rtx as trt
import torch

import torch_tensorrt_rtx as trtx
from torch_tensorrt_rtx.dynamo import _engine_op
from torch_tensorrt_rtx.dynamo._engine_cache_key import ENGINE_SETTINGS
from torch_tensorrt_rtx.dynamo._settings import CompilationSettings
from torch_tensorrt_rtx.dynamo.conversion import _engine_builder
from torch_tensorrt_rtx.dynamo.verification._verify import _check_engine


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.enc = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU())
        self.head = torch.nn.Linear(32, 4)

    def forward(self, x):
        return self.head(self.enc(x))


@pytest.fixture
def cpu_build(monkeypatch):
    monkeypatch.setattr(_engine_builder, "refit_flags", lambda settings: [])


def _compile(model, x, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return trtx.compile(model, inputs=[x], min_block_size=1, progress=False, **options)


def _engine_call(program):
    (call,) = program.graph.find_nodes(op="call_function", target=_engine_op.execute_engine.default)
    return call


def _reference_run(program, x):
    checks = {}
    with _engine_op.intercept_engines(lambda spec, ins, _record: _check_engine(spec, ins, checks)), torch.no_grad():
        return program(x)


@pytest.mark.parametrize("options, expected", [
    ({"strip_engine_weights": True}, {"STRIP_PLAN", "REFIT"}),
    ({"immutable_weights": False}, {"REFIT"}),
    ({"immutable_weights": False, "refit_identical_engine_weights": True}, {"REFIT_IDENTICAL"}),
    ({}, set()),
])
def test_builder_flags(options, expected):
    config = trt.Builder(_engine_builder.trt_logger()).create_builder_config()
    _engine_builder.apply_builder_options(config, CompilationSettings.from_options(options))
    flags = {f for f in ("STRIP_PLAN", "REFIT", "REFIT_IDENTICAL") if config.get_flag(getattr(trt.BuilderFlag, f))}
    assert flags == expected


def test_refit_settings_are_part_of_the_engine_key():
    assert {"strip_engine_weights", "immutable_weights", "refit_identical_engine_weights"} <= set(ENGINE_SETTINGS)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without a CUDA GPU")
def test_refittable_build_without_gpu_is_a_clear_error_not_a_fallback():
    with pytest.raises(_engine_builder.RefitBuildNeedsGpu, match="strip_engine_weights=True.*has no CUDA GPU"):
        _compile(Net().eval(), torch.randn(2, 16), strip_engine_weights=True)


def test_weights_are_kept_once_as_program_buffers_named_by_the_model(cpu_build):
    model = Net().eval()
    x = torch.randn(2, 16)
    program = _compile(model, x, strip_engine_weights=True)
    call = _engine_call(program)
    names = json.loads(call.args[2])["refit_weights"]
    params = dict(model.named_parameters())
    assert set(params) <= set(names)
    trailing = call.args[0][1:]
    assert len(trailing) == len(names)
    buffers = dict(program.named_buffers())
    for name, arg in zip(names, trailing):
        if name in params:
            assert torch.equal(buffers[arg.target], params[name])
    weight_bytes = sum(p.numel() * p.element_size() for p in params.values())
    kept = sum(b.numel() * b.element_size() for n, b in buffers.items() if not n.endswith("_engine"))
    assert weight_bytes <= kept <= 1.1 * weight_bytes
    assert torch.allclose(_reference_run(program, x), model(x), atol=1e-5)


def test_refit_module_weights_changes_what_the_engine_computes(cpu_build):
    model, x = Net().eval(), torch.randn(2, 16)
    program = _compile(model, x, immutable_weights=False)
    new = Net().eval()
    assert not torch.allclose(_reference_run(program, x), new(x), atol=1e-3)
    assert trtx.dynamo.refit_module_weights(program, new) is program
    assert torch.allclose(_reference_run(program, x), new(x), atol=1e-5)
    assert "PASSED" in str(trtx.verify(program, x))


def test_refit_of_an_immutable_program_says_how_to_compile():
    program = _compile(Net().eval(), torch.randn(2, 16))
    with pytest.raises(ValueError, match="not refittable; compile with strip_engine_weights=True"):
        trtx.dynamo.refit_module_weights(program, Net().eval())


def test_mutable_module_compiles_once_and_refits_after_weight_changes(cpu_build, monkeypatch):
    from torch_tensorrt_rtx import _mutable

    model, x = Net().eval(), torch.randn(2, 16)
    compiles = []
    real_compile = trtx.compile
    monkeypatch.setattr(trtx._compile, "compile", lambda *a, **k: compiles.append(k) or real_compile(*a, **k))
    mutable = _mutable.MutableTorchTensorRTModule(model, min_block_size=1, progress=False)
    assert torch.allclose(_reference_run(mutable, x), model(x), atol=1e-5)
    new = Net().eval()
    mutable.load_state_dict(new.state_dict())
    assert torch.allclose(_reference_run(mutable, x), new(x), atol=1e-5)
    with torch.no_grad():
        mutable.head.bias.add_(1.0)  # an in-place edit through the wrapper
    assert torch.allclose(_reference_run(mutable, x), new(x) + 1.0, atol=1e-5)
    assert len(compiles) == 1 and compiles[0]["immutable_weights"] is False
    _reference_run(mutable, torch.randn(3, 16))  # another input shape compiles again
    assert len(compiles) == 2


def test_a_constant_added_around_ctx_constant_is_a_conversion_error():
    import numpy as np

    from torch_tensorrt_rtx.dynamo.conversion._context import ConversionContext, ConversionError

    network = trt.Builder(_engine_builder.trt_logger()).create_network(
        1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    ctx = ConversionContext(network, name_weights=True)
    ctx.constant(torch.ones(3, 2))
    ctx.check_weights_named()  # every constant so far came through ctx.constant
    raw = np.ones((2, 2), dtype=np.float32)
    network.add_constant((2, 2), trt.Weights(raw)).name = "custom_node/raw_constant"
    with pytest.raises(ConversionError, match="'custom_node/raw_constant' was added without ctx.constant") as error:
        ctx.check_weights_named()
    assert error.value.node == "custom_node"


def test_reshaped_weights_keep_their_model_names_and_refit(cpu_build):
    torch.manual_seed(0)
    model, x = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.LayerNorm(32)).eval(), torch.randn(2, 16)
    program = _compile(model, x, strip_engine_weights=True)
    assert {"1.weight", "1.bias"} <= set(json.loads(_engine_call(program).args[2])["refit_weights"])
    new = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.LayerNorm(32)).eval()
    with torch.no_grad():
        new[1].weight.uniform_(0.5, 2.0)
        new[1].bias.uniform_(-1.0, 1.0)
    trtx.dynamo.refit_module_weights(program, new)
    assert torch.allclose(_reference_run(program, x), new(x), atol=1e-5)


def test_weights_folded_at_build_are_refused_unless_unchanged(cpu_build):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8)).eval()
    x = torch.randn(1, 3, 8, 8)
    program = _compile(model, x, strip_engine_weights=True)
    derived = json.loads(_engine_call(program).args[2])["refit_derived"]
    assert any("1.running_var" in sources for sources in derived.values())
    with pytest.raises(ValueError, match=r"new values of weights \['1.running_var \(in .*computed from them"):
        trtx.dynamo.refit_module_weights(program, {"1.running_var": torch.rand(8) + 0.5})
    new_conv = torch.nn.Conv2d(3, 8, 3)
    trtx.dynamo.refit_module_weights(program, {"0.weight": new_conv.weight, "0.bias": new_conv.bias})
    model[0].load_state_dict(new_conv.state_dict())
    assert torch.allclose(_reference_run(program, x), model(x), atol=1e-5)


def test_saved_weightless_program_keeps_the_weights_as_engine_inputs(cpu_build, tmp_path):
    model, x = Net().eval(), torch.randn(2, 16)
    path = tmp_path / "weightless.pt2"
    trtx.save(_compile(model, x, strip_engine_weights=True), path)
    loaded = trtx.load(path).module()
    (call,) = [n for n in loaded.graph.nodes if n.op == "call_function" and "execute_engine" in str(n.target)]
    names = json.loads(call.args[2])["refit_weights"]
    weights = call.args[0][-len(names):]
    assert len(call.args[0]) == 1 + len(names)
    for name, arg in zip(names, weights):
        if name == "head.weight":
            assert torch.equal(getattr(loaded, arg.target), model.head.weight)
    assert "head.weight" in names
