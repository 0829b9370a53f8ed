"""Upstream's ``MutableTorchTensorRTModule``: a model that compiles itself with refittable
engines at its first call and refits them (``refit_module_weights``) when its weights changed.

    mutable = torch_tensorrt_rtx.MutableTorchTensorRTModule(model, min_block_size=1)
    mutable(x)                            # compiles (immutable_weights=False)
    mutable.load_state_dict(new_weights)  # or mutable.fc.weight = ..., or in-place edits
    mutable(x)                            # refits, no rebuild

Weights changed means a tensor of the model's state dict was replaced or written in place (its
storage or its version counter moved). Inputs of other shapes or dtypes than the first compile
compile again, unless ``set_expected_dynamic_shape_range(args_dynamic_shapes,
kwargs_dynamic_shapes)`` gave ranges (``torch.export.Dim``s, as upstream): then the first compile
covers them (each Dim becomes an Input min/max, the call's size the opt; Dims of one name are one
shared dim) and calls within them run without a new compile. The model's attributes are
reachable through the wrapper (``mutable.fc``).

``MutableTorchTensorRTModule.save(module, path)`` / ``.load(path)`` (upstream's static methods)
write one ``torch.save`` file: the model, the settings, the dynamic ranges and the compiled program
as ``torch_tensorrt_rtx.save`` writes it (engines embedded: no rebuild on load). The file holds the
pickled model: load only files you trust.
"""
from __future__ import annotations

import os
import tempfile
from typing import Any, Dict, Optional, Tuple

import torch

_FORMAT = "torch_tensorrt_rtx.MutableTorchTensorRTModule/1"
Ranges = Dict[int, Tuple[str, int, int]]  # axis -> (dim name, min, max)


def _input_signature(args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Tuple[Any, ...]:
    leaves = torch.utils._pytree.tree_leaves((args, kwargs))
    return tuple((tuple(t.shape), t.dtype, t.device) if isinstance(t, torch.Tensor) else repr(t) for t in leaves)


def _ranges(what: str, dims: Any) -> Ranges:
    """{axis: torch.export.Dim} -> {axis: (name, min, max)}."""
    if not dims:
        return {}
    if not isinstance(dims, dict):
        raise TypeError(f"MutableTorchTensorRTModule: dynamic shapes of {what} must be {{axis: Dim}} (nested inputs "
                        f"are not supported); got {dims!r}")
    out = {}
    for axis, dim in dims.items():
        if isinstance(dim, dict):
            raise TypeError(f"MutableTorchTensorRTModule: {what} has nested dynamic shapes ({axis!r}: {dim!r}); "
                            "only tensor inputs can be dynamic here: pass the tensors as separate arguments")
        if type(dim).__name__ != "Dim":
            raise ValueError(f"MutableTorchTensorRTModule: {what} axis {axis}: {dim!r} is not a plain "
                             "torch.export.Dim (derived dims such as 4 * Dim(...) are not supported)")
        out[axis] = (dim.__name__, dim.min, dim.max)
    return out


def _ranged_input(what: str, x: Any, ranges: Ranges) -> Any:
    """An example tensor and its ranges -> an Input over them (the tensor's size is the opt)."""
    from torch_tensorrt_rtx.dynamo._input import Input

    if not ranges:
        return x
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"MutableTorchTensorRTModule: {what} has dynamic shapes but is a {type(x).__name__}, "
                        "not a tensor")
    lo, hi, names = list(x.shape), list(x.shape), [None] * x.dim()
    for axis, (name, low, high) in ranges.items():
        lo[axis], hi[axis], names[axis] = low, high, name
    return Input(min_shape=lo, opt_shape=tuple(x.shape), max_shape=hi, dtype=x.dtype, dim_names=tuple(names))


def _program_bytes(compiled: torch.nn.Module) -> bytes:
    from torch_tensorrt_rtx._compile import save

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "program.pt2")
        save(compiled, path)
        with open(path, "rb") as f:
            return f.read()


def _program_from_bytes(data: bytes) -> torch.nn.Module:
    from torch_tensorrt_rtx._compile import load

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "program.pt2")
        with open(path, "wb") as f:
            f.write(data)
        return load(path).module()


class MutableTorchTensorRTModule(torch.nn.Module):
    def __init__(self, pytorch_model: torch.nn.Module, **compile_settings: Any) -> None:
        super().__init__()
        if compile_settings.setdefault("immutable_weights", False) is not False:
            raise ValueError("MutableTorchTensorRTModule refits its engines: immutable_weights must be False")
        self.original_model = pytorch_model
        self._settings = compile_settings
        self._compiled: Optional[torch.nn.Module] = None
        self._signature: Optional[Tuple[Any, ...]] = None
        self._seen: Dict[str, Tuple[int, int]] = {}
        self._arg_ranges: Optional[Tuple[Ranges, ...]] = None
        self._kwarg_ranges: Dict[str, Ranges] = {}
        self._saved_program: Optional[bytes] = None  # the bytes _compiled was loaded from

    def set_expected_dynamic_shape_range(self, args_dynamic_shapes: Any, kwargs_dynamic_shapes: Any) -> None:
        """Dynamic dims for the next compile, in torch.export's form: one ``{axis: Dim}`` per
        positional input (a tuple) and ``{keyword: {axis: Dim}}`` for keyword inputs."""
        if not isinstance(args_dynamic_shapes, (tuple, list)) or not isinstance(kwargs_dynamic_shapes, dict):
            raise TypeError("set_expected_dynamic_shape_range(args_dynamic_shapes, kwargs_dynamic_shapes): a tuple "
                            "with one {axis: torch.export.Dim} per positional input and a dict keyword -> "
                            f"{{axis: Dim}}; got {type(args_dynamic_shapes).__name__}, "
                            f"{type(kwargs_dynamic_shapes).__name__}")
        arg_ranges = tuple(_ranges(f"input {k}", d) for k, d in enumerate(args_dynamic_shapes))
        self._kwarg_ranges = {name: _ranges(name, d) for name, d in kwargs_dynamic_shapes.items()}
        self._arg_ranges = arg_ranges  # both checked before either changes
        self._compiled = None  # the next call compiles with these ranges

    def _specs(self, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Tuple[list, Optional[Dict[str, Any]]]:
        if self._arg_ranges is None:
            return list(args), kwargs or None
        if len(self._arg_ranges) != len(args):
            raise ValueError(f"MutableTorchTensorRTModule: {len(self._arg_ranges)} entries in args_dynamic_shapes "
                             f"for {len(args)} positional inputs")
        specs = [_ranged_input(f"input {k}", x, r) for k, (x, r) in enumerate(zip(args, self._arg_ranges))]
        kwarg_specs = {name: _ranged_input(name, x, self._kwarg_ranges.get(name, {})) for name, x in kwargs.items()}
        return specs, kwarg_specs or None

    def _weights_now(self) -> Dict[str, Tuple[int, int]]:
        return {name: (t.data_ptr(), t._version) for name, t in self.original_model.state_dict(keep_vars=True).items()}

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        from torch_tensorrt_rtx._compile import compile as compile_program
        from torch_tensorrt_rtx.dynamo._refit import refit

        signature = _input_signature(args, kwargs) if self._arg_ranges is None else None
        if self._compiled is None or signature != self._signature:
            arg_specs, kwarg_specs = self._specs(args, kwargs)
            self._compiled = compile_program(self.original_model, arg_inputs=arg_specs, kwarg_inputs=kwarg_specs,
                                             **self._settings)
            self._signature, self._saved_program = signature, None
        elif self._weights_now() != self._seen:
            refit(self._compiled, self.original_model)
            self._saved_program = None
        self._seen = self._weights_now()
        return self._compiled(*args, **kwargs)

    @staticmethod
    def save(module: "MutableTorchTensorRTModule", path: Any) -> None:
        if not isinstance(module, MutableTorchTensorRTModule):
            raise TypeError(f"MutableTorchTensorRTModule.save: expected a MutableTorchTensorRTModule, got "
                            f"{type(module).__name__}")
        program = module._saved_program
        if module._compiled is not None and program is None:
            program = _program_bytes(module._compiled)
        torch.save({"format": _FORMAT, "model": module.original_model, "settings": module._settings,
                    "signature": module._signature, "arg_ranges": module._arg_ranges,
                    "kwarg_ranges": module._kwarg_ranges, "program": program}, path, pickle_protocol=4)

    @staticmethod
    def load(path: Any) -> "MutableTorchTensorRTModule":
        state = torch.load(path, weights_only=False)
        if not isinstance(state, dict) or state.get("format") != _FORMAT:
            raise ValueError(f"MutableTorchTensorRTModule.load: {os.fspath(path)!r} was not written by "
                             "MutableTorchTensorRTModule.save")
        module = MutableTorchTensorRTModule(state["model"], **state["settings"])
        module._arg_ranges, module._kwarg_ranges = state["arg_ranges"], state["kwarg_ranges"]
        if state["program"] is not None:
            module._compiled = _program_from_bytes(state["program"])
            module._signature, module._saved_program = state["signature"], state["program"]
            module._seen = module._weights_now()
        return module

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:
        """The model's weights (refitted into the engines at the next call)."""
        return self.original_model.load_state_dict(state_dict, strict=strict, assign=assign)

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self._modules["original_model"], name)
