"""What `torch_tensorrt_rtx.load` returns: the saved ExportedProgram, with a module that is cheap to call.

    program = trtx.load("model.pt2")     # a LoadedProgram: an ExportedProgram in every respect
    module = program.module()            # the module ExportedProgram.module() builds, plus a fast path
    y = module(x)                        # or program(x), which calls a module built once

`ExportedProgram.module()` runs pytree flattening and torch's input-constraint checks in Python on
every call: about 40 us, 9x a one-engine program's engine op. The module returned here is that same
module (its class, buffers, names and outputs), with a fast path in front of it: when every input is
a plain tensor given the way the program was saved (same positional count and keywords, the saved
rank and dtype, every static dim equal, every dynamic dim inside its saved range, dims that share a
symbol equal), the graph runs on the flat inputs directly and the outputs get their saved structure.
Any other call (a bad input, a non-tensor, added hooks, tracing) takes torch's own path, so wrong
inputs raise exactly the errors `ExportedProgram.module()` raises.
"""
from __future__ import annotations

import math
from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

import torch
from torch.fx import GraphModule
from torch.nn.modules import module as nn_module
from torch.utils import _pytree as pytree

_FAST = "_trtx_fast_call"
_MODULE = "_trtx_called_module"
_TENSOR_TYPES = (torch.Tensor, torch.nn.Parameter)

# dims of one input: an int for a static dim, (symbol number, lowest, highest) for a dynamic one
DimSpec = Union[int, Tuple[int, int, float]]


class LoadedProgram(torch.export.ExportedProgram):
    """An ExportedProgram whose ``module()`` is cheap to call, and which can be called itself."""

    def module(self, *args: Any, **kwargs: Any) -> GraphModule:
        return with_fast_call(super().module(*args, **kwargs))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        module = self.__dict__.get(_MODULE)
        if module is None:
            module = self.__dict__[_MODULE] = self.module()
        return module(*args, **kwargs)


def as_loaded_program(program: torch.export.ExportedProgram) -> LoadedProgram:
    program.__class__ = LoadedProgram
    return program


class _FastCall:
    """The checks and the flat forward behind a module's fast path."""

    def __init__(self, module: GraphModule, forward: Callable, n_args: int, keywords: List[str],
                 inputs: List[Tuple[torch.dtype, List[DimSpec]]], out_spec: Any) -> None:
        self.forward, self.n_args, self.keywords, self.inputs = forward, n_args, keywords, inputs
        self.symbols = 1 + max((d[0] for _, dims in inputs for d in dims if type(d) is tuple), default=-1)
        self.hooks = (len(module._forward_pre_hooks), len(module._forward_hooks))
        self.outputs = _output_builder(out_spec)

    def flat_inputs(self, args: tuple, kwargs: dict) -> Optional[Sequence[torch.Tensor]]:
        """The inputs in graph order when they pass every check, else None."""
        if len(args) != self.n_args or len(kwargs) != len(self.keywords):
            return None
        flat = args + tuple(kwargs[k] for k in self.keywords if k in kwargs) if kwargs else args
        if len(flat) != len(self.inputs):
            return None
        sizes = [None] * self.symbols
        for tensor, (dtype, dims) in zip(flat, self.inputs):
            if type(tensor) not in _TENSOR_TYPES or tensor.dtype != dtype:
                return None
            shape = tensor.shape
            if len(shape) != len(dims):
                return None
            for size, dim in zip(shape, dims):
                if type(dim) is int:
                    if size != dim:
                        return None
                elif not dim[1] <= size <= dim[2]:
                    return None
                elif sizes[dim[0]] is None:
                    sizes[dim[0]] = size
                elif sizes[dim[0]] != size:
                    return None
        return flat


def _output_builder(out_spec: Any) -> Callable[[Sequence[Any]], Any]:
    """flat outputs -> the saved output structure (what tree_unflatten gives, without its walk
    for the common one-tensor and tuple-of-tensors cases)."""
    if out_spec.is_leaf():
        return lambda out: out[0]
    if out_spec.type in (tuple, list) and all(c.is_leaf() for c in out_spec.children()):
        return tuple if out_spec.type is tuple else list
    return lambda out: pytree.tree_unflatten(list(out), out_spec)


def _dim_spec(size: Any, ranges: dict, symbols: dict) -> Optional[DimSpec]:
    if isinstance(size, int):
        return size
    expr = size.node.expr if isinstance(size, torch.SymInt) else None
    if expr is None or not expr.is_Symbol:
        return None  # a derived dim (2 * s0): only torch's checks know how to solve it
    number = symbols.setdefault(expr, len(symbols))
    bounds = ranges.get(expr)
    return (number, int(bounds.lower), float(bounds.upper)) if bounds is not None else (number, 0, math.inf)


def _fast_call(module: GraphModule) -> Optional[_FastCall]:
    """The fast path for `module`, or None when its inputs or outputs are not plain tensors."""
    in_spec, out_spec = getattr(module, "_in_spec", None), getattr(module, "_out_spec", None)
    if in_spec is None or out_spec is None or in_spec.type is not tuple or in_spec.num_children != 2:
        return None
    args_spec, kwargs_spec = in_spec.children()
    if args_spec.type is not tuple or kwargs_spec.type is not dict:
        return None
    if not all(c.is_leaf() for c in args_spec.children() + kwargs_spec.children()):
        return None
    ranges = dict(getattr(module, "range_constraints", None) or {})
    symbols = {}
    inputs = []
    for node in module.graph.find_nodes(op="placeholder"):
        val = node.meta.get("val")
        if not isinstance(val, torch.Tensor):
            return None
        dims = [_dim_spec(size, ranges, symbols) for size in val.shape]
        if any(d is None for d in dims):
            return None
        inputs.append((val.dtype, dims))
    return _FastCall(module, _flat_forward(module), args_spec.num_children, list(kwargs_spec.context), inputs,
                     out_spec)


def _flat_forward(module: GraphModule) -> Callable:
    """forward(self, *flat_inputs) -> flat outputs: the module's graph without pytree handling."""
    graph = module.graph
    pytree_codegen = graph._codegen
    graph.set_codegen(torch.fx.graph.CodeGen())
    try:
        code = graph.python_code(root_module="self")
    finally:
        graph.set_codegen(pytree_codegen)
    namespace = dict(code.globals)
    exec(compile(code.src, "<torch_tensorrt_rtx loaded program>", "exec"), namespace)  # noqa: S102 (our graph's code)
    return namespace["forward"]


def _hooked(module: torch.nn.Module, fast: _FastCall) -> bool:
    return ((len(module._forward_pre_hooks), len(module._forward_hooks)) != fast.hooks
            or bool(module._backward_hooks or module._backward_pre_hooks)
            or bool(nn_module._global_forward_pre_hooks or nn_module._global_forward_hooks
                    or nn_module._global_backward_hooks or nn_module._global_backward_pre_hooks))


def _call(self, *args: Any, **kwargs: Any) -> Any:
    fast = self.__dict__.get(_FAST)
    if fast is not None and not _hooked(self, fast) and not torch.compiler.is_compiling():
        flat = fast.flat_inputs(args, kwargs)
        if flat is not None:
            return fast.outputs(fast.forward(self, *flat))
    return GraphModule.__call__(self, *args, **kwargs)


def with_fast_call(module: GraphModule) -> GraphModule:
    """Give `module` (from ExportedProgram.module()) the fast path, in place. Its class is already its
    own (torch.fx makes one per GraphModule); a subclass of it adds the fast `__call__`."""
    fast = _fast_call(module)
    if fast is None:
        return module
    module.__dict__[_FAST] = fast
    module.__class__ = type("LoadedProgramModule", (type(module),), {"__call__": _call})
    return module
