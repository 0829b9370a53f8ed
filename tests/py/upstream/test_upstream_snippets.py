"""Upstream Torch-TensorRT's usage, written the way its examples and docs write it, with only the
import changed. Everything runs on a CPU: engines build here, `verify` runs them through the
reference executor; only running an engine needs an RTX GPU (RTXGPUUnavailableError here).
The option-by-option walk is test_upstream_options.py."""
from __future__ import annotations

import logging

import pytest
import torch

import torch_tensorrt_rtx as torch_tensorrt
from torch_tensorrt_rtx.runtime import RTXGPUUnavailableError

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


class MLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = torch.nn.Linear(16, 32), torch.nn.Linear(32, 8)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


class ConvNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(8)

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x))).mean(dim=(2, 3))


def _engines(module):
    return [n for n, _ in module.named_buffers() if n.endswith("_engine")]


# -- 1. compile spellings ----------------------------------------------------------------------
def test_compile_ir_dynamo_with_inputs_and_fp16():
    model = MLP().eval()
    inputs = [torch_tensorrt.Input(min_shape=(1, 16), opt_shape=(4, 16), max_shape=(8, 16), dtype=torch.float32)]
    trt_gm = torch_tensorrt.compile(model, ir="dynamo", inputs=inputs, enabled_precisions={torch.half},
                                    workspace_size=1 << 30, min_block_size=1, device="cuda:0")
    assert _engines(trt_gm) and trt_gm.compile_report.reduced_precision == torch.float16
    assert torch_tensorrt.verify(trt_gm, torch.randn(3, 16), reference_module=model).ok


def test_compile_ir_default_and_torch_compile():
    model, x = MLP().eval(), torch.randn(2, 16)
    assert _engines(torch_tensorrt.compile(model, ir="default", arg_inputs=[x], min_block_size=1))
    optimized = torch_tensorrt.compile(model, ir="torch_compile", inputs=[x], min_block_size=1)
    assert isinstance(optimized, torch._dynamo.eval_frame.OptimizedModule)
    with torch_tensorrt.compile_reports() as reports, pytest.raises(RTXGPUUnavailableError):
        optimized(x)  # builds on the first call; running the engine needs an RTX GPU
    assert reports and reports[-1].engines


@pytest.mark.parametrize("ir, why", [("ts", "TorchScript"), ("torchscript", "TorchScript"), ("fx", "FX"),
                                     ("onnx", "unknown ir")])
def test_other_irs_are_refused_with_the_reason(ir, why):
    with pytest.raises(ValueError, match=f"ir='{ir}'.*{why}.*ir='dynamo'"):
        torch_tensorrt.compile(MLP().eval(), ir=ir, inputs=[torch.randn(2, 16)])


def test_dynamo_trace_then_dynamo_compile_an_exported_program():
    model = MLP().eval()
    inputs = [torch_tensorrt.Input(min_shape=(1, 16), opt_shape=(4, 16), max_shape=(8, 16), name="x")]
    exp_program = torch_tensorrt.dynamo.trace(model, inputs)
    assert isinstance(exp_program, torch.export.ExportedProgram)
    trt_gm = torch_tensorrt.dynamo.compile(exp_program, arg_inputs=inputs, min_block_size=1)
    assert torch_tensorrt.verify(trt_gm, torch.randn(5, 16), reference_module=model).ok
    direct = torch_tensorrt.dynamo.compile(torch.export.export(model, (torch.randn(2, 16),)), min_block_size=1)
    assert _engines(direct)


def test_save_with_arg_inputs_and_retrace_then_load(tmp_path):
    model, x = MLP().eval(), torch.randn(2, 16)
    trt_gm = torch_tensorrt.compile(model, ir="dynamo", arg_inputs=[x], min_block_size=1)
    path = tmp_path / "trt.ep"
    torch_tensorrt.save(trt_gm, str(path), output_format="exported_program", arg_inputs=[x], retrace=True,
                        extra_files={"note.txt": "upstream"})
    loaded = torch_tensorrt.load(str(path))
    assert torch_tensorrt.engine_records(loaded)
    ranged = torch_tensorrt.Input(min_shape=(1, 16), opt_shape=(4, 16), max_shape=(8, 16))
    dynamic_gm = torch_tensorrt.compile(model, ir="dynamo", arg_inputs=[ranged], min_block_size=1)
    batch = torch.export.Dim("batch", min=1, max=8)  # upstream's "Method 1": explicit dynamic_shapes
    torch_tensorrt.save(dynamic_gm, str(tmp_path / "dyn.ep"), arg_inputs=[x], dynamic_shapes=({0: batch},))
    program = torch.export.load(str(tmp_path / "dyn.ep"))
    user_input = next(n for n in program.graph.find_nodes(op="placeholder")
                      if n.name in program.graph_signature.user_inputs)
    assert not isinstance(user_input.meta["val"].shape[0], int)  # the given Dim, not the static example size
    torch_tensorrt.save(torch.export.export(model, (x,)), str(tmp_path / "plain.ep"))  # an ExportedProgram as is
    assert isinstance(torch_tensorrt.load(str(tmp_path / "plain.ep")), torch.export.ExportedProgram)
    with pytest.raises(ValueError, match="retrace=False"):
        torch_tensorrt.save(trt_gm, str(tmp_path / "b.ep"), arg_inputs=[x], retrace=False)
    with pytest.raises(ValueError, match="'torchscript' is not supported.*aot_inductor"):
        torch_tensorrt.save(trt_gm, str(tmp_path / "c.ts"), output_format="torchscript", arg_inputs=[x])


def test_input_format_channels_last_and_name():
    model = ConvNet().eval()
    spec = torch_tensorrt.Input((2, 3, 8, 8), format=torch.channels_last, name="image")
    assert spec.example().is_contiguous(memory_format=torch.channels_last)
    trt_gm = torch_tensorrt.compile(model, ir="dynamo", inputs=[spec], min_block_size=1)
    x = torch.randn(2, 3, 8, 8).contiguous(memory_format=torch.channels_last)
    assert torch_tensorrt.verify(trt_gm, x, reference_module=model).ok
    with pytest.raises(ValueError, match="rank-4"):
        torch_tensorrt.Input((2, 8), format=torch.channels_last)
    with pytest.raises(ValueError, match="format"):
        torch_tensorrt.Input((2, 8), format="NHWC8")


def test_input_name_names_the_dims_and_the_messages():
    from torch_tensorrt_rtx.dynamo._export import dynamic_shapes
    from torch_tensorrt_rtx.dynamo._input import describe

    spec = torch_tensorrt.Input(min_shape=(1, 16), opt_shape=(4, 16), max_shape=(8, 16), name="tokens")
    dims = dynamic_shapes([spec], MLP())
    assert dims[0][0].__name__ == "tokens_dim0"
    assert describe(spec).startswith("tokens: ")

    class NeedsBatch4(torch.nn.Module):
        def forward(self, x):
            return x.reshape(4, 16) * 2  # only batch 4 fits: the dynamic batch cannot hold

    with pytest.raises(Exception, match="tokens"):
        torch_tensorrt.compile(NeedsBatch4(), inputs=[spec], min_block_size=1)


def test_dryrun_partitions_without_building(tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(16, 16), torch.nn.GELU(), torch.nn.Linear(16, 16)).eval()
    x, path = torch.randn(2, 16), tmp_path / "dryrun.txt"
    module = torch_tensorrt.compile(model, ir="dynamo", inputs=[x], dryrun=str(path), min_block_size=1,
                                    torch_executed_ops={"aten::gelu"})
    report = module.compile_report
    assert report.dryrun and [e.name for e in report.engines] == ["_run_on_trt_0", "_run_on_trt_1"]
    assert not _engines(module) and torch.allclose(module(x), model(x))  # no engine: it runs in PyTorch
    assert "DRY RUN" in path.read_text() and "planned engine _run_on_trt_1" in path.read_text()


def test_serialized_engine_of_a_whole_program():
    trt = pytest.importorskip("tensorrt_rtx")
    model, x = MLP().eval(), torch.randn(2, 16)
    engine_bytes = torch_tensorrt.dynamo.convert_exported_program_to_serialized_trt_engine(
        torch.export.export(model, (x,)), arg_inputs=(x,))
    assert isinstance(engine_bytes, bytes) and engine_bytes
    runtime = trt.Runtime(trt.Logger(trt.Logger.ERROR))
    # Without a GPU every engine is INVALID here; what tells an engine from other bytes is that
    # TensorRT-RTX finds nothing wrong with its format (garbage of the same length gets a diagnostic).
    assert runtime.get_engine_validity(engine_bytes)[1] == 0
    assert runtime.get_engine_validity(b"x" * len(engine_bytes))[1] != 0
    assert torch_tensorrt.convert_method_to_trt_engine(model, "forward", inputs=[x], ir="dynamo")
    with pytest.raises(ValueError, match="method_name='encode'"):
        torch_tensorrt.convert_method_to_trt_engine(model, "encode", inputs=[x])
    with pytest.raises(RuntimeError, match="require_full_compilation"):
        torch_tensorrt.convert_method_to_trt_engine(model, inputs=[x], torch_executed_ops={"aten::relu"})


@pytest.mark.parametrize("precisions", [{torch.float16}, {"fp16"}, {"half"}, {torch.float32, "float16"}])
def test_enabled_precisions_forms_compile(precisions):
    trt_gm = torch_tensorrt.compile(MLP().eval(), inputs=[torch.randn(2, 16)], enabled_precisions=precisions,
                                    min_block_size=1)
    assert trt_gm.compile_report.reduced_precision == torch.float16


@pytest.mark.parametrize("backend", ["torch_tensorrt", "tensorrt"])
def test_torch_compile_with_upstream_backend_names(backend):
    torch._dynamo.reset()
    model, x = MLP().eval(), torch.randn(2, 16)
    optimized = torch.compile(model, backend=backend, options={"min_block_size": 1, "enabled_precisions": {"fp16"}})
    with torch_tensorrt.compile_reports() as reports, pytest.raises(RTXGPUUnavailableError):
        optimized(x)
    assert reports and reports[-1].engines and reports[-1].reduced_precision == torch.float16


def test_upstream_backend_names_are_left_to_their_owner(monkeypatch):
    import importlib.util

    import torch._dynamo.backends.registry as registry
    from torch_tensorrt_rtx import _backend_names

    held = object()
    monkeypatch.setitem(registry._BACKENDS, "tensorrt", held)
    monkeypatch.delitem(registry._BACKENDS, "torch_tensorrt", raising=False)
    monkeypatch.delitem(registry._COMPILER_FNS, "torch_tensorrt", raising=False)
    _backend_names.add_upstream_names()
    assert registry._BACKENDS["tensorrt"] is held  # someone else's registration is kept
    assert registry._BACKENDS["torch_tensorrt"].value.endswith("backend:tensorrt_rtx_backend")
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: object() if name == "torch_tensorrt" else real_find_spec(name, *a))
    assert "torch_tensorrt package" in _backend_names.owner_of("torch_tensorrt", registry)


def test_device_names_and_frontends_that_are_not_here():
    trt_gm = torch_tensorrt.compile(MLP().eval(), inputs=[torch.randn(2, 16)], min_block_size=1,
                                    device=torch_tensorrt.Device("cuda:0"))
    assert _engines(trt_gm)
    assert torch_tensorrt.Device(gpu_id=1).to(torch.device) == torch.device("cuda", 1)
    with pytest.raises(ValueError, match="CUDA GPU"):
        torch_tensorrt.Device("cpu")
    with pytest.raises(ValueError, match="no DLA"):
        torch_tensorrt.Device(device_type=torch_tensorrt.DeviceType.DLA, dla_core=0)
    with pytest.raises(AttributeError, match="TorchScript frontend is not part"):
        torch_tensorrt.ts.compile  # noqa: B018
    with pytest.raises(NotImplementedError, match="cross_compile_for_windows is not part of torch_tensorrt_rtx"):
        torch_tensorrt.dynamo.cross_compile_for_windows(MLP(), inputs=[torch.randn(2, 16)])
    assert torch_tensorrt.dynamo.partitioning and torch_tensorrt.dynamo.lowering  # subpackages are attributes


def test_refit_names_work_or_say_what_to_use():
    with pytest.raises(ValueError, match="not refittable; compile with strip_engine_weights=True"):
        torch_tensorrt.dynamo.refit_module_weights(
            torch_tensorrt.compile(MLP().eval(), inputs=[torch.randn(2, 16)], min_block_size=1), MLP())
    with pytest.raises(ValueError, match="immutable_weights must be False"):
        torch_tensorrt.MutableTorchTensorRTModule(MLP(), immutable_weights=True)
    with pytest.raises(ValueError, match="make_refittable.*use immutable_weights=False"):
        torch_tensorrt.compile(MLP().eval(), inputs=[torch.randn(2, 16)], make_refittable=True)


# -- 4. CUDA graphs, weight streaming, device modes ----------------------------------------------
def test_cudagraphs_names_map_to_whole_graph_capture():
    runtime = torch_tensorrt.runtime
    trt_gm = torch_tensorrt.compile(MLP().eval(), inputs=[torch.randn(2, 16)], min_block_size=1)
    assert runtime.get_cudagraphs_mode() is False
    with runtime.enable_cudagraphs(trt_gm) as cudagraphs_module:
        assert cudagraphs_module is trt_gm
        assert runtime.current_settings().cuda_graph_strategy == "whole_graph_capture"
        assert runtime.get_cudagraphs_mode() is True
    assert runtime.current_settings().cuda_graph_strategy == "disabled"
    runtime.set_cudagraphs_mode(True)
    try:
        assert runtime.get_cudagraphs_mode() and runtime.current_settings().cuda_graph_strategy == "whole_graph_capture"
    finally:
        runtime.set_cudagraphs_mode(False)
    assert not runtime.get_cudagraphs_mode() and not runtime.get_whole_cudagraphs_mode()


def test_rtx_runtime_settings_names(tmp_path):
    runtime = torch_tensorrt.runtime
    trt_gm = torch_tensorrt.compile(MLP().eval(), inputs=[torch.randn(2, 16)], min_block_size=1)
    with runtime.runtime_config(trt_gm, dynamic_shapes_kernel_specialization_strategy="eager",
                                cuda_graph_strategy="whole_graph_capture") as module:
        assert module is trt_gm
        now = runtime.current_settings()
        assert (now.kernel_strategy, now.cuda_graph_strategy) == ("eager", "whole_graph_capture")
    with runtime.set_dynamic_shapes_kernel_strategy(trt_gm, "none"):
        assert runtime.current_settings().kernel_strategy == "none"
    with runtime.runtime_cache(trt_gm, str(tmp_path / "rtx.cache")):
        assert runtime.current_settings().cache_path == str(tmp_path / "rtx.cache")
    assert runtime.current_settings() == runtime.RuntimeSettings()
    with pytest.raises(ValueError, match="unknown kernel_strategy 'fast'"):
        with runtime.set_dynamic_shapes_kernel_strategy(trt_gm, "fast"):
            pass
    with pytest.raises(ValueError, match="autosave=False"):
        runtime.runtime_cache(trt_gm, autosave=False)
    with pytest.raises(NotImplementedError, match="one optimization profile"):
        runtime.optimization_profile(trt_gm, 0)


class _StreamingEngine:
    def __init__(self, streamable):
        self.streamable_weights_size = streamable
        self.weight_streaming_budget_v2 = streamable  # everything on the GPU to start with

    def get_weight_streaming_automatic_budget(self):
        return self.streamable_weights_size // 2


class _StreamingRuntime:
    """Stands in for the Python runtime's TRTModule of one engine (no GPU here)."""

    def __init__(self, streamable):
        self.engine, self.dropped = _StreamingEngine(streamable), 0

    def _ensure_engine(self):
        return self.engine

    def drop_execution_context(self):
        self.dropped += 1


def test_weight_streaming_splits_the_budget_over_the_engines(monkeypatch):
    from torch_tensorrt_rtx.dynamo import _engine_op

    if _engine_op.NATIVE:
        pytest.skip("the C++ runtime runs the engines in this build (tests/py/cross_runtime covers it there)")
    model = torch.nn.Sequential(torch.nn.Linear(16, 16), torch.nn.GELU(), torch.nn.Linear(16, 16)).eval()
    trt_gm = torch_tensorrt.compile(model, inputs=[torch.randn(2, 16)], min_block_size=1,
                                    enable_weight_streaming=True, torch_executed_ops={"aten::gelu"})
    assert len(_engines(trt_gm)) == 2
    runtimes = iter([_StreamingRuntime(3000), _StreamingRuntime(1000)])
    monkeypatch.setattr(_engine_op, "_new_python_module", lambda record, name: next(runtimes))
    with torch_tensorrt.runtime.weight_streaming(trt_gm) as weight_streaming_ctx:
        assert weight_streaming_ctx.total_device_budget == 4000 == weight_streaming_ctx.device_budget
        weight_streaming_ctx.device_budget = 400
        engines = [e for _, _, e in weight_streaming_ctx._engines]
        assert [e.weight_streaming_budget_v2 for e in engines] == [300, 100]  # in proportion, as upstream
        assert weight_streaming_ctx.get_automatic_weight_streaming_budget() == 2000
        with pytest.raises(ValueError, match="device_budget"):
            weight_streaming_ctx.device_budget = -1
    assert [e.weight_streaming_budget_v2 for e in engines] == [3000, 1000]  # restored on exit


def test_weight_streaming_refusals(monkeypatch):
    trt_gm = torch_tensorrt.compile(MLP().eval(), inputs=[torch.randn(2, 16)], min_block_size=1)
    with pytest.raises(ValueError, match="holds no TensorRT-RTX engines"):
        torch_tensorrt.runtime.weight_streaming(MLP())
    from torch_tensorrt_rtx.dynamo import _engine_op

    if not _engine_op.NATIVE:
        with pytest.raises(RTXGPUUnavailableError):  # budgets live on deserialized engines: a GPU
            torch_tensorrt.runtime.weight_streaming(trt_gm)
        monkeypatch.setattr(_engine_op, "_new_python_module", lambda record, name: _StreamingRuntime(0))
        fresh = torch_tensorrt.compile(MLP().eval(), inputs=[torch.randn(2, 16)], min_block_size=1)
        with pytest.raises(RuntimeError, match="enable_weight_streaming=True"):
            torch_tensorrt.runtime.weight_streaming(fresh)
    # On the C++ runtime the same context manager reaches the C++ engines (tests/py/cross_runtime/
    # test_weightless_cross_runtime.py runs it there through the scripted backend).
    monkeypatch.setattr(_engine_op, "NATIVE", True)
    from torch_tensorrt_rtx.dynamo._program_engine import NativeStreamingEngine

    assert [type(runtime) for _, runtime in _engine_op.runtime_engines(trt_gm)] == [NativeStreamingEngine]


def test_multi_device_safe_mode_and_output_allocator_names(monkeypatch):
    runtime = torch_tensorrt.runtime
    with runtime.set_multi_device_safe_mode(True):
        assert runtime.upstream_api.get_multi_device_safe_mode() is True
    assert runtime.upstream_api.get_multi_device_safe_mode() is False
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(NotImplementedError, match="2 CUDA devices"):
        runtime.set_multi_device_safe_mode(True)
    from torch_tensorrt_rtx.runtime import output_allocation

    model = MLP()
    with runtime.enable_output_allocator(model) as entered:
        assert entered is model and output_allocation.output_allocator_forced()
        with runtime.enable_pre_allocated_outputs(model) as inner:
            assert inner is model and output_allocation.reusing_outputs()
        assert not output_allocation.reusing_outputs()
    assert not output_allocation.output_allocator_forced()


# -- 5. a custom converter in upstream's form ----------------------------------------------------
def test_converter_overloading_example_ported():
    """Upstream's examples/dynamo/converter_overloading.py: a tanh-GELU converter that takes over
    from the built-in one (priority HIGH) only for approximate='tanh'."""
    import numpy as np
    import tensorrt_rtx as trt
    from torch_tensorrt_rtx.dynamo.conversion import ConverterPriority, dynamo_tensorrt_converter
    from torch_tensorrt_rtx.dynamo.conversion._upstream_registry import remove_converter

    class GeLU(torch.nn.Module):
        def __init__(self, mode="tanh"):
            super().__init__()
            self.mode = mode

        def forward(self, x):
            return torch.nn.functional.gelu(x, approximate=self.mode)

    used = []

    @dynamo_tensorrt_converter(
        torch.ops.aten.gelu.default,
        capability_validator=lambda node, settings: node.kwargs.get("approximate") == "tanh" and
        settings.min_block_size == 1,
        supports_dynamic_shapes=True, priority=ConverterPriority.HIGH)
    def aten_ops_gelu(ctx, target, args, kwargs, name):
        used.append((target, name))
        x = args[0]

        def scalar(value):
            array = np.full((1,) * len(x.shape), value, dtype=np.float32)
            ctx.cpu_weights_reference_holder.append(array)
            return ctx.net.add_constant(array.shape, trt.Weights(array)).get_output(0)

        def mul(a, b):
            return ctx.net.add_elementwise(a, b, trt.ElementWiseOperation.PROD).get_output(0)

        def add(a, b):
            return ctx.net.add_elementwise(a, b, trt.ElementWiseOperation.SUM).get_output(0)

        inner = mul(scalar(0.7978845608), add(x, mul(scalar(0.044715), mul(mul(x, x), x))))
        tanh = ctx.net.add_activation(inner, trt.ActivationType.TANH).get_output(0)
        return mul(mul(scalar(0.5), x), add(scalar(1.0), tanh))

    try:
        ex_input = torch.randn(2, 5)
        my_custom_gelu = torch_tensorrt.compile(GeLU("tanh").eval(), arg_inputs=(ex_input,), min_block_size=1)
        assert used == [(torch.ops.aten.gelu.default, "gelu")]
        layers = my_custom_gelu._engine_sources["_run_on_trt_0"].network.network
        assert all(layers.get_layer(i).name.startswith("gelu/") for i in range(layers.num_layers))
        assert torch_tensorrt.verify(my_custom_gelu, ex_input, reference_module=GeLU("tanh")).ok
        my_gelu_erf = torch_tensorrt.compile(GeLU("none").eval(), arg_inputs=(ex_input,), min_block_size=1)
        assert len(used) == 1  # the validator sent erf-GELU to the built-in converter
        assert torch_tensorrt.verify(my_gelu_erf, ex_input, reference_module=GeLU("none")).ok
    finally:
        assert remove_converter(torch.ops.aten.gelu.default, aten_ops_gelu)


def test_assume_dynamic_shape_support_offers_dynamic_nodes_to_static_converters():
    import tensorrt_rtx as trt
    from torch_tensorrt_rtx.dynamo.conversion import ConverterPriority, dynamo_tensorrt_converter
    from torch_tensorrt_rtx.dynamo.conversion._upstream_registry import remove_converter

    used = []

    @dynamo_tensorrt_converter(torch.ops.aten.relu.default, priority=ConverterPriority.HIGH)  # static only
    def static_relu(ctx, target, args, kwargs, name):
        used.append(name)
        return ctx.net.add_activation(args[0], trt.ActivationType.RELU).get_output(0)

    dynamic = [torch_tensorrt.Input(min_shape=(1, 16), opt_shape=(4, 16), max_shape=(8, 16))]
    try:
        torch_tensorrt.compile(MLP().eval(), inputs=dynamic, min_block_size=1)
        assert used == []  # dynamic batch: the built-in relu converter took it
        trt_gm = torch_tensorrt.compile(MLP().eval(), inputs=dynamic, min_block_size=1,
                                        assume_dynamic_shape_support=True)
        assert used == ["relu"]
        assert torch_tensorrt.verify(trt_gm, torch.randn(6, 16)).ok
    finally:
        assert remove_converter(torch.ops.aten.relu.default, static_relu)


def test_use_fp32_acc_and_autocast_exclusions_keep_matmuls_in_fp32():
    model, x = MLP().eval(), torch.randn(4, 16)

    def matmul_dtypes(**options):
        trt_gm = torch_tensorrt.compile(model, inputs=[x], enabled_precisions={torch.float16}, min_block_size=1,
                                        **options)
        assert torch_tensorrt.verify(trt_gm, x, reference_module=model).ok
        network = trt_gm._engine_sources["_run_on_trt_0"].network.network
        layers = [network.get_layer(i) for i in range(network.num_layers)]
        return {layer.get_output(0).dtype.name for layer in layers if layer.type.name == "MATRIX_MULTIPLY"}

    assert matmul_dtypes() == {"HALF"}
    assert matmul_dtypes(use_fp32_acc=True) == {"FLOAT"}
    assert matmul_dtypes(autocast_excluded_ops={torch.ops.aten.linear.default}) == {"FLOAT"}
    assert matmul_dtypes(autocast_excluded_nodes={"^linear$"}) == {"FLOAT", "HALF"}  # the first linear only


# -- 6. logging and the Debugger -----------------------------------------------------------------
def test_logging_levels_are_scoped(caplog):
    package = logging.getLogger("torch_tensorrt_rtx")
    before = package.level
    for level, manager in [(logging.DEBUG, torch_tensorrt.logging.debug), (logging.INFO, torch_tensorrt.logging.info),
                           (logging.WARNING, torch_tensorrt.logging.warnings),
                           (logging.ERROR, torch_tensorrt.logging.errors),
                           (logging.CRITICAL, torch_tensorrt.logging.internal_errors),
                           (torch_tensorrt.logging.GRAPHS, torch_tensorrt.logging.graphs)]:
        with manager():
            assert package.level == level
        assert package.level == before
    caplog.set_level(torch_tensorrt.logging.GRAPHS, logger="torch_tensorrt_rtx")
    with torch_tensorrt.logging.graphs():
        torch_tensorrt.compile(MLP().eval(), inputs=[torch.randn(2, 16)], min_block_size=1)
    messages = [r.getMessage() for r in caplog.records]
    assert any("TensorRT-RTX subgraph" in m for m in messages)  # the INFO report
    assert any("aten.linear.default" in m and "graph()" in m for m in messages)  # the lowered graph (GRAPHS)


def test_debug_option_logs_the_compile_at_debug(caplog):
    package = logging.getLogger("torch_tensorrt_rtx")
    caplog.set_level(logging.WARNING, logger="torch_tensorrt_rtx")
    caplog.handler.setLevel(logging.DEBUG)
    torch_tensorrt.compile(MLP().eval(), inputs=[torch.randn(2, 16)], min_block_size=1)
    ours = lambda: [r for r in caplog.records if r.name.startswith("torch_tensorrt_rtx")]  # noqa: E731
    assert not [r for r in ours() if r.levelno < logging.WARNING]
    torch_tensorrt.compile(MLP().eval(), inputs=[torch.randn(2, 16)], min_block_size=1, debug=True)
    assert [r for r in ours() if r.levelno == logging.DEBUG]
    assert package.level == logging.WARNING  # restored after the compile


def test_debugger_writes_graphs_partition_layers_and_report(tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(16, 16), torch.nn.GELU(), torch.nn.Linear(16, 16)).eval()
    with torch_tensorrt.dynamo.Debugger(log_level="debug", logging_dir=str(tmp_path)) as debugger:
        torch_tensorrt.compile(model, inputs=[torch.randn(2, 16)], min_block_size=1, torch_executed_ops={"aten::gelu"})
        torch_tensorrt.compile(MLP().eval(), inputs=[torch.randn(2, 16)], min_block_size=1)
    first = tmp_path / "compile_1"
    assert "aten.gelu.default" in (first / "lowered_graph.txt").read_text()
    partition = (first / "partitioned_graph.txt").read_text()
    assert "_run_on_trt_0" in partition and "_run_on_trt_1" in partition and "aten.gelu.default" in partition
    assert "MATRIX_MULTIPLY" in (first / "_run_on_trt_1_layers.txt").read_text()
    assert "2 TensorRT-RTX subgraph(s)" in (first / "compile_report.txt").read_text()
    assert (tmp_path / "compile_2" / "compile_report.txt").exists()
    assert "DEBUG" in (tmp_path / "torch_tensorrt_rtx.log").read_text()
    assert len(debugger.written) == 5 + 4  # 2 engines, then 1
    with pytest.raises(ValueError, match="save_engine_profile.*needs an RTX GPU"):
        torch_tensorrt.dynamo.Debugger(save_engine_profile=True)
