"""Check a compiled program on the CPU: run every TensorRT-RTX engine through the reference
executor and compare it with the same subgraph run eagerly in PyTorch.

    report = torch_tensorrt_rtx.verify(compiled, x)             # compiled: AOT module or torch.compile'd
    report = torch_tensorrt_rtx.verify(compiled, x, reference_module=model)   # + end-to-end check
    print(report); assert report.ok

While verifying, each engine call runs (a) the partition's FX graph eagerly and (b) the engine's
INetworkDefinition through the reference executor, on the same inputs. Mismatching outputs are
reported with the first FX nodes (in graph order) whose values diverge. NaN/Inf on one side where
the other is finite is a mismatch (counted, with its first index), tolerances follow each output's
magnitude, and the reported error is the real largest one (see _compare.py). The program continues
with the reference executor's outputs, so the end-to-end comparison reflects the engines.

What it needs: the engine's network and FX subgraph, kept in memory by the compiling process
(setting keep_networks=True, the default). A program loaded from a .pt2 carries only engine
records (serialized engines cannot be inspected without a GPU), so verify raises
`VerificationUnavailableError` for it; recompile from the model to verify, or run on an RTX GPU.
Nothing here touches CUDA.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Dict, List, Optional

import torch
import torch.fx

from torch_tensorrt_rtx.dynamo._engine_op import OutputSpec, intercept_engines
from torch_tensorrt_rtx.dynamo._input import describe as _describe
from torch_tensorrt_rtx.dynamo.verification import engine_sources
from torch_tensorrt_rtx.dynamo.verification._compare import Comparison, compare, floor_scale, worst
from torch_tensorrt_rtx.dynamo.verification.profile_check import check_input_shapes
from torch_tensorrt_rtx.dynamo.verification.reference_executor import run_network

# (rtol, tolerance relative to the output's largest magnitude) per dtype: TensorRT kernels
# accumulate in fp32 but may reorder sums. See _compare.py.
TOLERANCES = {
    torch.float32: (1e-3, 1e-4),
    torch.float16: (1e-2, 1e-2),
    torch.bfloat16: (5e-2, 5e-2),
}


class VerificationUnavailableError(RuntimeError):
    """verify cannot run an engine on CPU (its network is not in this process)."""


@dataclasses.dataclass
class Divergence:
    node: str  # FX node name
    max_abs_error: float
    dtype: str


@dataclasses.dataclass
class EngineCheck:
    name: str
    calls: int = 0
    max_abs_error: float = 0.0
    ok: bool = True
    precision: Optional[torch.dtype] = None  # float16/bfloat16 when part of the engine computes in it
    # NaN/Inf in the engine's output where eager PyTorch has another value (or the reverse)
    nonfinite: int = 0
    first_nonfinite: str = ""  # "output 0: 3 value(s) NaN where ..., first at index (0, 3)"
    diverging_nodes: List[Divergence] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class VerificationReport:
    engines: List[EngineCheck]
    end_to_end_max_abs_error: Optional[float] = None
    end_to_end_ok: Optional[bool] = None
    end_to_end_nonfinite: str = ""  # as EngineCheck.first_nonfinite, for the end-to-end comparison
    # Why no engine ran (the program has none, or this call reached none); None when engines ran.
    nothing_to_verify: Optional[str] = None

    @property
    def ok(self) -> bool:
        """True only when engines ran and matched: a program with nothing to verify is not a pass."""
        return bool(self.engines) and all(e.ok for e in self.engines) and self.end_to_end_ok is not False

    def __str__(self) -> str:
        if self.nothing_to_verify is not None:
            lines = [f"verification: nothing to verify: {self.nothing_to_verify}"]
            if self.end_to_end_ok is not None:
                verdict = "ok" if self.end_to_end_ok else "MISMATCH"
                lines.append(f"  end to end vs reference module (PyTorch only): {verdict}, "
                             f"max abs error {self.end_to_end_max_abs_error:.3g}")
            return "\n".join(lines)
        lines = [f"verification {'PASSED' if self.ok else 'FAILED'}: {len(self.engines)} engine(s) "
                 "run by the CPU reference executor vs eager PyTorch"]
        for e in self.engines:
            lines.append(f"  {e.name}: {'ok' if e.ok else 'MISMATCH'}, max abs error {e.max_abs_error:.3g}"
                         f" over {e.calls} call(s)")
            if e.first_nonfinite:
                lines.append(f"    non-finite: {e.first_nonfinite}")
            for d in e.diverging_nodes[:5]:
                lines.append(f"    diverges at FX node {d.node} ({d.dtype}): max abs error {d.max_abs_error:.3g}")
        if self.end_to_end_ok is not None:
            lines.append(f"  end to end vs reference module: {'ok' if self.end_to_end_ok else 'MISMATCH'}, "
                         f"max abs error {self.end_to_end_max_abs_error:.3g}")
            if self.end_to_end_nonfinite:
                lines.append(f"    non-finite: {self.end_to_end_nonfinite}")
        return "\n".join(lines)


def _close(actual: torch.Tensor, expected: torch.Tensor) -> Comparison:
    rtol, scale_tol = TOLERANCES.get(expected.dtype, (1e-3, 1e-4))
    return compare(actual, expected, rtol, scale_tol)


_REDUCED = (torch.float16, torch.bfloat16)


def _close_to_reference(actual: torch.Tensor, eager: torch.Tensor, reference: torch.Tensor,
                        precision: torch.dtype) -> Comparison:
    """Reduced precision: both the engine and eager PyTorch are compared with an fp32 run of the
    same graph. The engine may deviate from it by twice what eager itself does, or by a few units
    of `precision` relative to the values' magnitude, whichever is larger. So rounding that eager
    fp16 shares is never a MISMATCH, and a real bug (errors of the order of the values) still is."""
    if actual.shape != eager.shape or reference.shape != eager.shape:
        return Comparison(False, math.inf)
    if not actual.numel():
        return Comparison(True, 0.0)
    eager_vs_fp32 = compare(eager, reference, 0.0, 0.0)  # eager's own rounding (fp16 overflow is its business)
    scale = max(eager_vs_fp32.scale, floor_scale(reference.dtype))
    allowed = max(2.0 * eager_vs_fp32.finite_error, 8.0 * torch.finfo(precision).eps * scale)
    engine_vs_fp32 = compare(actual, reference, 0.0, 0.0)
    result = compare(actual, eager, 0.0, 0.0, allowed=math.inf)  # non-finite values must agree with eager
    result.ok = result.ok and engine_vs_fp32.finite_error <= allowed
    return result


def _lowest_precision(module: torch.fx.GraphModule) -> Optional[torch.dtype]:
    """float16/bfloat16 if any value in the graph has that dtype, else None."""
    for node in module.graph.nodes:
        val = node.meta.get("val")
        vals = val if isinstance(val, (list, tuple)) else [val]
        for v in vals:
            if isinstance(v, torch.Tensor) and v.dtype in _REDUCED:
                return v.dtype
    return None


class _Float32Run(torch.fx.Interpreter):
    """The graph with every fp16/bf16 value computed in fp32 instead: the reference that
    reduced-precision results are judged against."""

    def run_node(self, n):
        if n.op == "call_function" and n.target is torch.ops.aten._to_copy.default \
                and n.kwargs.get("dtype") in _REDUCED:
            (x,) = self.map_nodes_to_values(n.args[:1], n)
            return x.float() if isinstance(x, torch.Tensor) and x.is_floating_point() else x
        out = super().run_node(n)
        return torch.utils._pytree.tree_map_only(
            torch.Tensor, lambda t: t.float() if t.dtype in _REDUCED else t, out)


def _float32_outputs(module: torch.fx.GraphModule, inputs: List[torch.Tensor]) -> Optional[List[torch.Tensor]]:
    try:
        with torch.no_grad():
            return list(_Float32Run(module).run(*inputs))
    except Exception:  # noqa: BLE001 - an op that insists on its dtype: fall back to fixed tolerances
        return None


class _Recorder(torch.fx.Interpreter):
    def __init__(self, module: torch.fx.GraphModule) -> None:
        super().__init__(module)
        self.values: Dict[str, Any] = {}

    def run_node(self, n):
        out = super().run_node(n)
        self.values[n.name] = out
        return out


def _refit_reference(net: Any, spec: OutputSpec, weights: List[torch.Tensor]) -> None:
    """A weightless engine's weights (the op's trailing inputs) into the reference network: its
    constants read the host tensors kept by name at conversion (the same memory as the partition's
    parameters when those are float32 on the CPU), so verify computes with the program's weights."""
    hosts = net.context.refit_weights
    for name, weight in zip(spec.refit_weights, weights):
        host = hosts[name]
        if host.data_ptr() != weight.data_ptr():
            host.copy_(weight.detach().to(host.device, host.dtype))


def _check_engine(spec: OutputSpec, inputs: List[torch.Tensor], checks: Dict[str, EngineCheck]) -> List[torch.Tensor]:
    source = engine_sources.lookup(spec.sha256)
    if source is None or source.network is None:
        raise VerificationUnavailableError(
            f"engine {spec.name} (sha256 {spec.sha256[:12]}) has no INetworkDefinition in this process: it was "
            "loaded from disk or compiled with keep_networks=False. A .pt2 keeps only engine records; serialized "
            "engines cannot be inspected without a GPU. Recompile the model in this process to verify it on CPU, "
            "or run the program on an RTX GPU.")
    own = len(spec.inputs)
    _refit_reference(source.network, spec, inputs[own:])
    cpu_inputs = [t.detach().cpu() for t in inputs[:own]]
    recorder = _Recorder(source.fx_module)
    eager = recorder.run(*cpu_inputs)
    net = source.network
    check_input_shapes(net, cpu_inputs, label=f"engine {spec.name}")
    outputs, values = run_network(net.network, dict(zip(net.input_names, cpu_inputs)), keep_all=True)
    check = checks.setdefault(spec.name, EngineCheck(spec.name))
    check.calls += 1
    reference = [outputs[name] for name in net.output_names]
    precision = _lowest_precision(source.fx_module)
    float32 = _float32_outputs(source.fx_module, cpu_inputs) if precision is not None else None
    check.precision = precision
    for k, (actual, expected) in enumerate(zip(reference, eager)):
        if float32 is not None and expected.is_floating_point():
            result = _close_to_reference(actual, expected, float32[k], precision)
        else:
            result = _close(actual, expected)
        check.max_abs_error = worst([result.max_abs_error], check.max_abs_error)
        check.ok &= result.ok
        check.nonfinite += result.nonfinite
        if result.nonfinite and not check.first_nonfinite:
            check.first_nonfinite = f"output {k}: {result.describe_nonfinite()}"
    if not check.ok and not check.diverging_nodes:
        for node in source.fx_module.graph.nodes:
            tensor_name = net.node_tensors.get(node.name)
            value = recorder.values.get(node.name)
            if node.op == "placeholder" or tensor_name not in values or not isinstance(value, torch.Tensor):
                continue
            result = _close(values[tensor_name], value)
            if not result.ok:
                check.diverging_nodes.append(Divergence(node.name, result.max_abs_error, str(value.dtype)))
    device = inputs[0].device if inputs else torch.device("cpu")
    # Clones: a custom op may not return its input (a reshape-only engine would alias it).
    return [r.to(device).clone() for r in reference]


def _compiled_precision(module: Any) -> Optional[torch.dtype]:
    module = getattr(module, "compiled_module", module)
    report = getattr(module, "compile_report", None)
    return getattr(report, "reduced_precision", None)


def _close_end_to_end(actual: torch.Tensor, expected: torch.Tensor, precision: torch.dtype) -> Comparison:
    """A model compiled for fp16/bf16 against the fp32 model: errors relative to the output's
    largest magnitude, with the budget of a few layers of `precision` rounding (fp16 ~2 %, bf16 ~10 %).
    That magnitude is at least `precision`'s smallest normal number: a program computing in fp16
    cannot represent outputs far below it (random-init classifiers give 1e-8), so it is not judged there."""
    relative = 2e-2 if precision == torch.float16 else 1e-1
    return compare(actual, expected, 0.0, relative, floor=floor_scale(precision))


def _why_no_engine(module: Any) -> str:
    compile_report = getattr(module, "compile_report", None)
    if compile_report is not None and not compile_report.engines:
        reasons = "; ".join(f"{op} ({why})" for op, why in list(sorted(compile_report.fallback_reasons.items()))[:3])
        return (f"the program has no TensorRT-RTX engine: all {sum(compile_report.fallback_ops.values())} op(s) "
                f"run in PyTorch" + (f", e.g. {reasons}" if reasons else ""))
    return "no TensorRT-RTX engine ran during this call (the program has none, or this input took a path without one)"


def verify(module: Any, *inputs: Any, reference_module: Optional[torch.nn.Module] = None,
           **kwargs: Any) -> VerificationReport:
    """Run `module(*inputs, **kwargs)` with every engine executed by the CPU reference executor."""
    specs = getattr(module, "_torch_tensorrt_rtx_export", None)  # set by torch_tensorrt_rtx.compile
    if specs is not None and len(inputs) != len(specs):
        raise TypeError(f"verify: the compiled module takes {len(specs)} input(s) "
                        f"({', '.join(_describe(s) for s in specs)}), got {len(inputs)}")
    if reference_module is not None:  # a module may mutate its inputs: the reference gets the originals
        ref_inputs, ref_kwargs = torch.utils._pytree.tree_map_only(torch.Tensor, torch.clone, (inputs, kwargs))
    engine_sources.make_available(module)  # a module from the program cache: compiled again here
    checks: Dict[str, EngineCheck] = {}
    with intercept_engines(lambda spec, ins, _record: _check_engine(spec, ins, checks)), torch.no_grad():
        result = module(*inputs, **kwargs)
    report = VerificationReport(list(checks.values()))
    if not checks:
        report.nothing_to_verify = _why_no_engine(module)
    if reference_module is not None:
        with torch.no_grad():
            expected = reference_module(*ref_inputs, **ref_kwargs)
        flat_actual, _ = torch.utils._pytree.tree_flatten(result)
        flat_expected, _ = torch.utils._pytree.tree_flatten(expected)
        errs, oks, nonfinite = [], [], []
        precision = _compiled_precision(module) or next((e.precision for e in report.engines if e.precision), None)
        for a, e in zip(flat_actual, flat_expected):
            if isinstance(a, torch.Tensor) and isinstance(e, torch.Tensor):
                if precision is not None and e.is_floating_point():
                    result = _close_end_to_end(a.cpu(), e.cpu(), precision)
                else:
                    result = _close(a.cpu(), e.cpu())
                oks.append(result.ok)
                errs.append(result.max_abs_error)
                if result.nonfinite:
                    nonfinite.append(f"output {len(oks) - 1}: {result.describe_nonfinite()}")
        report.end_to_end_ok = all(oks) and len(flat_actual) == len(flat_expected)
        report.end_to_end_max_abs_error = worst(errs)
        report.end_to_end_nonfinite = "; ".join(nonfinite)
    return report
