"""Input: the shape (static, or a min/opt/max range per dimension) and dtype of one input.

    Input(shape=(1, 3, 224, 224))                                     # static
    Input(min_shape=(1, 16), opt_shape=(8, 16), max_shape=(64, 16))   # dynamic batch
    Input.from_tensor(x)                                              # static, from an example
    ids  = Input(min_shape=(1, 1), opt_shape=(4, 64), max_shape=(8, 128), dtype=torch.int64,
                 dim_names=("batch", "seq"))                          # named dynamic dims
    mask = Input(min_shape=(1, 1), opt_shape=(4, 64), max_shape=(8, 128), dtype=torch.int64,
                 dim_names=("batch", "seq"))                          # same names: same sizes

Dimensions whose min and max differ are dynamic: they become torch.export dims and a range in
the engine's optimization profile. A dynamic dim may be named (`dim_names`, one entry per dim,
None for unnamed); dims with the same name, on one input or several, are one shared
`torch.export.Dim`, as a BERT call's input_ids and attention_mask need. Named dims must have the
same range everywhere they appear. Upstream's `shared_dims={axis: name}` is the same thing,
spelled per axis (it becomes `dim_names`).
"""
from __future__ import annotations

import dataclasses
import operator
from typing import Dict, Optional, Sequence, Tuple

import torch


def _dims(field: str, shape: object) -> Tuple[int, ...]:
    """`shape` as a tuple of non-negative ints, or a TypeError/ValueError naming the bad value."""
    if isinstance(shape, (str, bytes)) or not hasattr(shape, "__iter__"):
        raise TypeError(f"Input: {field} must be a sequence of integers such as (1, 3, 224, 224), got {shape!r}")
    dims = []
    for d, size in enumerate(shape):
        try:
            size = operator.index(size)  # ints, numpy ints; not floats, None or strings
        except TypeError:
            raise TypeError(f"Input: {field}[{d}] must be an integer, got {size!r} in {field}={tuple(shape)!r}") from None
        if size < 0:
            raise ValueError(f"Input: {field}[{d}] must be >= 0, got {size} in {field}={tuple(shape)!r}")
        dims.append(size)
    return tuple(dims)


@dataclasses.dataclass(frozen=True)
class Input:
    shape: Optional[Tuple[int, ...]] = None
    min_shape: Optional[Tuple[int, ...]] = None
    opt_shape: Optional[Tuple[int, ...]] = None
    max_shape: Optional[Tuple[int, ...]] = None
    dtype: torch.dtype = torch.float32
    name: Optional[str] = None
    dim_names: Optional[Tuple[Optional[str], ...]] = None
    # Memory layout of the example traced (upstream's `format`): torch.contiguous_format,
    # torch.channels_last (rank 4) or torch.channels_last_3d (rank 5). Engines take contiguous
    # data; the runtime makes a channels_last input contiguous before the engine (one copy).
    format: torch.memory_format = torch.contiguous_format
    # Upstream's spelling of dim_names: {axis: name}; axes with one name share one torch.export.Dim.
    shared_dims: Optional[Dict[int, str]] = None
    # Upstream's several optimization profiles per input: refused (one profile per engine here).
    profiles: Optional[Sequence[Dict[str, Tuple[int, ...]]]] = None

    def __post_init__(self) -> None:
        if self.profiles is not None:
            raise ValueError("Input: profiles=[...] (several optimization profiles per engine) is not supported: "
                             "each engine here has one profile. Give one range that covers them "
                             "(min_shape=..., opt_shape=..., max_shape=...), or compile once per range")
        if self.shape is not None:
            if any(s is not None for s in (self.min_shape, self.opt_shape, self.max_shape)):
                raise ValueError("Input: give either shape=... or min_shape/opt_shape/max_shape, not both")
            shape = _dims("shape", self.shape)
            for field in ("shape", "min_shape", "opt_shape", "max_shape"):
                object.__setattr__(self, field, shape)
        else:
            shapes = (self.min_shape, self.opt_shape, self.max_shape)
            if any(s is None for s in shapes):
                raise ValueError("Input: a dynamic input needs min_shape, opt_shape and max_shape")
            shapes = tuple(_dims(f, s) for f, s in zip(("min_shape", "opt_shape", "max_shape"), shapes))
            if len({len(s) for s in shapes}) != 1:
                raise ValueError(f"Input: min/opt/max shapes have different ranks: {shapes}")
            for d, (lo, opt, hi) in enumerate(zip(*shapes)):
                if not (1 <= lo <= opt <= hi or lo == opt == hi):  # a static dim may be 0 (empty)
                    raise ValueError(f"Input: dim {d} needs 1 <= min <= opt <= max, got {lo}, {opt}, {hi}")
            object.__setattr__(self, "min_shape", shapes[0])
            object.__setattr__(self, "opt_shape", shapes[1])
            object.__setattr__(self, "max_shape", shapes[2])
            object.__setattr__(self, "shape", None)
        if not isinstance(self.dtype, torch.dtype):
            raise TypeError(f"Input: dtype must be a torch.dtype, got {self.dtype!r}")
        if self.shared_dims is not None:
            self._shared_dims_to_names()
        if self.dim_names is not None:
            self._check_dim_names()
        self._check_format()
        if self.name is not None and not isinstance(self.name, str):
            raise TypeError(f"Input: name must be a string, got {self.name!r}")

    def _shared_dims_to_names(self) -> None:
        shared, rank = self.shared_dims, len(self.min_shape)
        if not isinstance(shared, dict) or not all(isinstance(a, int) and not isinstance(a, bool) for a in shared):
            raise TypeError(f"Input: shared_dims must be a dict of axis -> name, such as {{0: 'batch'}}, "
                            f"got {shared!r}")
        names = list(self.dim_names) if self.dim_names is not None else [None] * rank
        for axis, name in shared.items():
            if not -rank <= axis < rank:
                raise ValueError(f"Input: shared_dims axis {axis} is out of range for a rank-{rank} input")
            if names[axis] not in (None, name):
                raise ValueError(f"Input: axis {axis} is named {names[axis]!r} by dim_names and {name!r} by "
                                 "shared_dims; give one of them")
            names[axis] = name
        object.__setattr__(self, "dim_names", tuple(names))
        object.__setattr__(self, "shared_dims", None)  # one spelling kept: dim_names

    def _check_format(self) -> None:
        layout = _FORMATS.get(self.format, self.format) if isinstance(self.format, str) else self.format
        rank = _FORMAT_RANKS.get(layout)
        if rank is None:
            raise ValueError(f"Input: format={self.format!r} is not supported; expected torch.contiguous_format, "
                             "torch.channels_last (rank 4) or torch.channels_last_3d (rank 5)")
        if rank and len(self.min_shape) != rank:
            raise ValueError(f"Input: format={layout} needs a rank-{rank} input, got shape rank {len(self.min_shape)}")
        object.__setattr__(self, "format", layout)

    def label(self, k: int) -> str:
        """How messages, export dim names and the report call positional input `k`: its name when
        it is an identifier (``Input(name="image")`` -> ``image``, dims ``image_dim0``), else ``input<k>``."""
        return self.name if self.name and self.name.isidentifier() else f"input{k}"

    def _check_dim_names(self) -> None:
        names = self.dim_names
        if isinstance(names, str) or not hasattr(names, "__iter__"):
            raise TypeError(f"Input: dim_names must be a sequence with one name or None per dim, such as "
                            f"('batch', None), got {names!r}")
        names = tuple(names)
        if len(names) != len(self.min_shape):
            raise ValueError(f"Input: dim_names={names!r} has {len(names)} entries for a rank-{len(self.min_shape)} "
                             f"input; give one name or None per dim")
        dynamic = self.dynamic_dims
        for d, name in enumerate(names):
            if name is None:
                continue
            if not isinstance(name, str) or not name.isidentifier():
                raise ValueError(f"Input: dim_names[{d}]={name!r} must be a Python identifier such as 'batch'")
            if d not in dynamic:
                raise ValueError(f"Input: dim {d} is named {name!r} but is static (min = max = {self.min_shape[d]}); "
                                 "only dynamic dims can be named")
        object.__setattr__(self, "dim_names", names)

    def dim_name(self, d: int) -> Optional[str]:
        return self.dim_names[d] if self.dim_names is not None else None

    @classmethod
    def from_tensor(cls, tensor: torch.Tensor) -> "Input":
        layout = next((f for f, rank in _FORMAT_RANKS.items() if rank == tensor.dim() and not tensor.is_contiguous()
                       and tensor.is_contiguous(memory_format=f)), torch.contiguous_format)
        return cls(shape=tuple(tensor.shape), dtype=tensor.dtype, format=layout)

    @property
    def dynamic_dims(self) -> Dict[int, Tuple[int, int, int]]:
        return {d: (lo, opt, hi) for d, (lo, opt, hi) in enumerate(zip(self.min_shape, self.opt_shape, self.max_shape))
                if lo != hi}

    def example(self) -> torch.Tensor:
        """A tensor to trace with. Dynamic dims use opt (bumped past 0/1, which export specializes)."""
        shape = list(self.opt_shape)
        for d, (lo, opt, hi) in self.dynamic_dims.items():
            if opt < 2:
                shape[d] = min(2, hi)
        if self.dtype.is_floating_point:
            example = torch.randn(shape).to(self.dtype)
        else:
            example = torch.zeros(shape, dtype=self.dtype)
        return example.contiguous(memory_format=self.format)


_FORMAT_RANKS = {torch.contiguous_format: 0, torch.channels_last: 4, torch.channels_last_3d: 5}
_FORMATS = {"contiguous": torch.contiguous_format, "contiguous_format": torch.contiguous_format,
            "channels_last": torch.channels_last, "channels_last_3d": torch.channels_last_3d}


def describe(spec: Input) -> str:
    """`(2, 8) float32` or `min (1, 8) opt (4, 8) max (16, 8) float32`, for error messages; an
    Input's name comes first (`image: (1, 3, 8, 8) float32`)."""
    shape = spec.shape if spec.shape is not None else f"min {spec.min_shape} opt {spec.opt_shape} max {spec.max_shape}"
    named = f"{spec.name}: " if spec.name else ""
    return f"{named}{shape} {str(spec.dtype).replace('torch.', '')}"


def shared_dims(specs: Sequence[Input], labels: Sequence[str]) -> Dict[str, Tuple[int, int, int]]:
    """Range of every named dim; a ValueError naming both places when one name has two ranges."""
    seen: Dict[str, Tuple[Tuple[int, int, int], str]] = {}
    for spec, label in zip(specs, labels):
        for d, rng in spec.dynamic_dims.items():
            name = spec.dim_name(d)
            if name is None:
                continue
            if name in seen and seen[name][0] != rng:
                raise ValueError(f"Input: dim {name!r} has range (min, opt, max) {seen[name][0]} at {seen[name][1]} "
                                 f"but {rng} at {label} dim {d}; a shared dim needs one range")
            seen.setdefault(name, (rng, f"{label} dim {d}"))
    return {name: rng for name, (rng, _) in seen.items()}


def as_inputs(inputs: Sequence[object]) -> Tuple[Input, ...]:
    if not isinstance(inputs, (list, tuple)):
        raise TypeError(f"inputs must be a list or tuple with one torch_tensorrt_rtx.Input or torch.Tensor per "
                        f"positional input of forward, e.g. inputs=[x]; got {type(inputs).__name__}")
    out = []
    for i, item in enumerate(inputs):
        if isinstance(item, Input):
            out.append(item)
        elif isinstance(item, torch.Tensor):
            out.append(Input.from_tensor(item))
        else:
            raise TypeError(f"input {i}: expected torch_tensorrt_rtx.Input or a torch.Tensor, got "
                            f"{type(item).__name__} (non-tensor inputs are not supported by compile())")
    return tuple(out)
