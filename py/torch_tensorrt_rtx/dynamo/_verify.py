"""Check a compiled program on the CPU: run every TensorRT-RTX engine through the reference
executor and compare it with the same subgraph run eagerly in PyTorch.

    report = torch_tensorrt_rtx.verify(compiled, x)             # compiled: AOT module or torch.compile'd
    report = torch_tensorrt_rtx.verify(compiled, x, reference_module=model)   # + end-to-end check
    print(report); assert report.ok

While verifying, each engine call runs (a) the partition's FX graph eagerly and (b) the engine's
INetworkDefinition through the reference executor, on the same inputs. Mismatching outputs are
reported with the first FX nodes (in graph order) whose values diverge. The program continues
with the reference executor's outputs, so the end-to-end comparison reflects the engines.

What it needs: the engine's network and FX subgraph, kept in memory by the compiling process
(setting keep_networks=True, the default). A program loaded from a .pt2 carries only engine
records (serialized engines cannot be inspected without a GPU), so verify raises
`VerificationUnavailableError` for it; recompile from the model to verify, or run on an RTX GPU.
Nothing here touches CUDA.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Optional, Tuple

import torch
import torch.fx

from torch_tensorrt_rtx.dynamo import _debug
from torch_tensorrt_rtx.dynamo._engine_op import OutputSpec, intercept_engines
from torch_tensorrt_rtx.dynamo._input import describe as _describe
from torch_tensorrt_rtx.dynamo.conversion.reference_executor import run_network
from torch_tensorrt_rtx.dynamo.conversion.profile_check import check_input_shapes

# (rtol, atol) per dtype: TensorRT kernels accumulate in fp32 but may reorder sums.
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
    diverging_nodes: List[Divergence] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class VerificationReport:
    engines: List[EngineCheck]
    end_to_end_max_abs_error: Optional[float] = None
    end_to_end_ok: Optional[bool] = None
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
                lines.append(f"  end to end vs reference module (PyTorch only): "
                             f"{'ok' if self.end_to_end_ok else 'MISMATCH'}, max abs error {self.end_to_end_max_abs_error:.3g}")
            return "\n".join(lines)
        lines = [f"verification {'PASSED' if self.ok else 'FAILED'}: {len(self.engines)} engine(s) "
                 "run by the CPU reference executor vs eager PyTorch"]
        for e in self.engines:
            lines.append(f"  {e.name}: {'ok' if e.ok else 'MISMATCH'}, max abs error {e.max_abs_error:.3g}"
                         f" over {e.calls} call(s)")
            for d in e.diverging_nodes[:5]:
                lines.append(f"    diverges at FX node {d.node} ({d.dtype}): max abs error {d.max_abs_error:.3g}")
        if self.end_to_end_ok is not None:
            lines.append(f"  end to end vs reference module: {'ok' if self.end_to_end_ok else 'MISMATCH'}, "
                         f"max abs error {self.end_to_end_max_abs_error:.3g}")
        return "\n".join(lines)


def _close(actual: torch.Tensor, expected: torch.Tensor) -> Tuple[bool, float]:
    if actual.shape != expected.shape:
        return False, float("inf")
    if not expected.is_floating_point():
        return bool(torch.equal(actual, expected)), float((actual.double() - expected.double()).abs().max()) if actual.numel() else 0.0
    rtol, atol = TOLERANCES.get(expected.dtype, (1e-3, 1e-4))
    a, b = actual.double(), expected.double()
    err = float((a - b).abs().max()) if a.numel() else 0.0
    return bool(torch.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True)), err


class _Recorder(torch.fx.Interpreter):
    def __init__(self, module: torch.fx.GraphModule) -> None:
        super().__init__(module)
        self.values: Dict[str, Any] = {}

    def run_node(self, n):
        out = super().run_node(n)
        self.values[n.name] = out
        return out


def _check_engine(spec: OutputSpec, inputs: List[torch.Tensor], checks: Dict[str, EngineCheck]) -> List[torch.Tensor]:
    source = _debug.lookup(spec.sha256)
    if source is None or source.network is None:
        raise VerificationUnavailableError(
            f"engine {spec.name} (sha256 {spec.sha256[:12]}) has no INetworkDefinition in this process: it was "
            "loaded from disk or compiled with keep_networks=False. A .pt2 keeps only engine records; serialized "
            "engines cannot be inspected without a GPU. Recompile the model in this process to verify it on CPU, "
            "or run the program on an RTX GPU.")
    cpu_inputs = [t.detach().cpu() for t in inputs]
    recorder = _Recorder(source.fx_module)
    eager = recorder.run(*cpu_inputs)
    net = source.network
    check_input_shapes(net, cpu_inputs, label=f"engine {spec.name}")
    outputs, values = run_network(net.network, dict(zip(net.input_names, cpu_inputs)), keep_all=True)
    check = checks.setdefault(spec.name, EngineCheck(spec.name))
    check.calls += 1
    reference = [outputs[name] for name in net.output_names]
    for actual, expected in zip(reference, eager):
        ok, err = _close(actual, expected)
        check.max_abs_error = max(check.max_abs_error, err)
        check.ok &= ok
    if not check.ok and not check.diverging_nodes:
        for node in source.fx_module.graph.nodes:
            tensor_name = net.node_tensors.get(node.name)
            value = recorder.values.get(node.name)
            if node.op == "placeholder" or tensor_name not in values or not isinstance(value, torch.Tensor):
                continue
            ok, err = _close(values[tensor_name], value)
            if not ok:
                check.diverging_nodes.append(Divergence(node.name, err, str(value.dtype)))
    device = inputs[0].device if inputs else torch.device("cpu")
    return [r.to(device) for r in reference]


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
        errs, oks = [], []
        for a, e in zip(flat_actual, flat_expected):
            if isinstance(a, torch.Tensor) and isinstance(e, torch.Tensor):
                ok, err = _close(a.cpu(), e.cpu())
                oks.append(ok)
                errs.append(err)
        report.end_to_end_ok = all(oks) and len(flat_actual) == len(flat_expected)
        report.end_to_end_max_abs_error = max(errs, default=0.0)
    return report
