"""The torch.compile backend: ``torch.compile(model, backend="tensorrt_rtx", options={...})``.

Registered twice, so it works with or without ``import torch_tensorrt_rtx``: through the
``torch_dynamo_backends`` entry point in pyproject.toml, and by ``register_backend`` when this
module is imported. ``options`` are CompilationSettings fields (min_block_size,
torch_executed_ops, require_full_compilation, compute_capabilities, progress, keep_networks).

Dynamo hands us an FX graph whose module parameters and buffers are graph inputs. They are
bound as constants (frozen, inference only) so they become engine weights; the remaining inputs
are traced with torch.export, decomposed and compiled by the shared pipeline. Graphs that
dynamo made shape-dynamic (SymInt inputs) run in PyTorch with a warning: use
``torch.compile(..., dynamic=False)`` or ``torch_tensorrt_rtx.compile`` with Input ranges.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, List, Optional, Sequence

import torch
from torch.fx import GraphModule

logger = logging.getLogger(__name__)

BACKEND_NAME = "tensorrt_rtx"


def _is_module_state(node: torch.fx.Node, value: Any) -> bool:
    if isinstance(value, torch.nn.Parameter):
        return True
    grapharg = node.meta.get("grapharg")
    source = getattr(grapharg, "source", None)
    name = getattr(source, "name", None)
    name = name() if callable(name) else name  # a method in older torch, a property in newer
    name = name if isinstance(name, str) else str(node.target)
    return "_parameters" in name or "_buffers" in name


def _freeze_module_state(gm: GraphModule, example_inputs: Sequence[Any]) -> List[int]:
    """Turn parameter/buffer placeholders into constants; return indices of the real inputs."""
    user_indices = []
    placeholders = list(gm.graph.find_nodes(op="placeholder"))
    for index, (node, value) in enumerate(zip(placeholders, example_inputs)):
        if isinstance(value, torch.Tensor) and _is_module_state(node, value):
            attr = f"_frozen_{index}"
            gm.register_buffer(attr, value.detach())
            with gm.graph.inserting_before(node):
                const = gm.graph.get_attr(attr)
            node.replace_all_uses_with(const)
            gm.graph.erase_node(node)
        else:
            user_indices.append(index)
    gm.recompile()
    return user_indices


def _copy(gm: GraphModule) -> GraphModule:
    graph = torch.fx.Graph()
    output = graph.graph_copy(gm.graph, {})
    graph.output(output)
    return GraphModule(gm, graph)


def tensorrt_rtx_backend(gm: GraphModule, example_inputs: Sequence[Any],
                         options: Optional[dict] = None, **kwargs: Any) -> Callable[..., Any]:
    from torch_tensorrt_rtx._compile import export_aten
    from torch_tensorrt_rtx.dynamo._compiler import compile_graph
    from torch_tensorrt_rtx.dynamo._input import Input
    from torch_tensorrt_rtx.dynamo._settings import CompilationSettings

    settings = CompilationSettings.from_options({**(options or {}), **kwargs})
    if any(not isinstance(v, torch.Tensor) for v in example_inputs):
        kinds = sorted({type(v).__name__ for v in example_inputs if not isinstance(v, torch.Tensor)})
        logger.warning("tensorrt_rtx backend: graph has non-tensor inputs (%s; dynamo marked shapes dynamic?). "
                       "Running it in PyTorch. Use torch.compile(..., dynamic=False) or "
                       "torch_tensorrt_rtx.compile with Input ranges for dynamic shapes.", ", ".join(kinds))
        return gm.forward
    gm = _copy(gm)  # dynamo reads the graph it handed us afterwards: never edit it in place
    user_indices = _freeze_module_state(gm, example_inputs)
    specs = [Input.from_tensor(example_inputs[i]) for i in user_indices]
    with torch.no_grad():
        aten_gm, symbol_ranges, _ = export_aten(gm, specs)
    compiled, report = compile_graph(aten_gm, symbol_ranges, settings)
    compiled.compile_report = report
    _LAST_REPORTS.append(report)
    del _LAST_REPORTS[:-8]

    def run(*args: Any) -> Any:
        return compiled(*[args[i] for i in user_indices])

    run.compiled_module = compiled  # type: ignore[attr-defined]
    return run


# The last few compile reports, for tools and tests that drive torch.compile (newest last).
_LAST_REPORTS: List[Any] = []


def recent_reports() -> List[Any]:
    return list(_LAST_REPORTS)


def entry_point_installed() -> bool:
    """True if torch can find this backend through the torch_dynamo_backends entry point."""
    from importlib.metadata import entry_points

    return any(ep.name == BACKEND_NAME for ep in entry_points(group="torch_dynamo_backends"))


def register() -> None:
    """Register with dynamo directly; only needed when the entry point is not installed
    (torch registers entry-point backends itself, and refuses duplicates)."""
    from torch._dynamo.backends.registry import _COMPILER_FNS, register_backend

    if BACKEND_NAME not in _COMPILER_FNS and not entry_point_installed():
        register_backend(tensorrt_rtx_backend, name=BACKEND_NAME)
