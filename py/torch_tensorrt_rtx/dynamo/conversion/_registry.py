"""Converter registry: maps an FX call target to the functions that lower it to TensorRT-RTX.

A converter module registers functions with the `converter` decorator:

    @converter(torch.ops.aten.relu.default, supports_dynamic_shapes=True)
    def relu(ctx, node, args, kwargs):
        return ctx.network.add_activation(args[0], trt.ActivationType.RELU).get_output(0)

Contract:
- `validator(node) -> bool` decides, from the FX node alone (its args and `meta["val"]`),
  whether the converter can handle this particular call. Partitioning asks it; a node whose
  validators all refuse stays in PyTorch. A validator that knows why it refuses returns
  `Refusal("one-line reason")` (falsy); the compile report then gives that reason.
- Among the converters whose validator accepts a node, the highest `priority` wins.
- `supports_dynamic_shapes=False` converters are only offered nodes whose tensors are static.
- Converters receive `args`/`kwargs` with FX nodes replaced by `trt.ITensor`s and return one
  ITensor or a tuple of them. Constant tensors (weights, frozen parameters, lifted constants)
  arrive as constant ITensors too, so every converter handles a constant in every position the
  way it handles a network tensor. A converter that folds weights on the host (batch norm)
  registers with `host_weights=True` and receives them as torch tensors instead.
- `precision` says how the op computes when `enabled_precisions` asks for fp16/bf16 (the pass in
  lowering/_precision.py reads it with `precision_policy`): `Precision.REDUCED` (always in the
  reduced dtype: matmuls, convolutions), `Precision.FOLLOW` (in the reduced dtype when its floating
  inputs already are: activations, elementwise arithmetic, data movement), or nothing: float32.
  An op no converter takes (the interpreter's getitem, ops decomposed before conversion) gets its
  policy from `declare_precision`.

To add coverage, write a new module in `converters/`: every module there is imported.
"""
from __future__ import annotations

import dataclasses
import enum
import logging
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from torch.fx import Node

logger = logging.getLogger(__name__)

ConverterFn = Callable[..., Any]
Validator = Callable[[Node], bool]


@dataclasses.dataclass(frozen=True)
class ConverterEntry:
    target: Any
    fn: ConverterFn
    validator: Optional[Validator]
    priority: int
    supports_dynamic_shapes: bool
    host_weights: bool = False

    @property
    def name(self) -> str:
        return f"{self.fn.__module__}.{self.fn.__name__}"


_REGISTRY: Dict[Any, List[ConverterEntry]] = {}


class Precision(enum.Enum):
    """How an op computes in an fp32 program compiled for fp16/bf16 (see the module docstring)."""

    REDUCED = "reduced"
    FOLLOW = "follow"
    FLOAT32 = "float32"


_PRECISION: Dict[Any, Tuple[Precision, str]] = {}  # target -> (policy, who declared it)


class Refusal:
    """A validator's "no" with its reason, e.g. `Refusal("dropout_p > 0: random numbers ...")`."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"Refusal({self.reason!r})"


def converter(
    *targets: Any,
    validator: Optional[Validator] = None,
    priority: int = 0,
    supports_dynamic_shapes: bool = True,
    host_weights: bool = False,
    precision: Optional[Precision] = None,
) -> Callable[[ConverterFn], ConverterFn]:
    """Register the decorated function as the converter for every target given."""

    def register(fn: ConverterFn) -> ConverterFn:
        if precision is not None:
            _declare(precision, targets, f"{fn.__module__}.{fn.__name__}")
        for target in targets:
            entry = ConverterEntry(target, fn, validator, priority, supports_dynamic_shapes, host_weights)
            entries = _REGISTRY.setdefault(target, [])
            entries.append(entry)
            entries.sort(key=lambda e: -e.priority)
        return fn

    return register


def declare_precision(policy: Precision, *targets: Any) -> None:
    """The precision policy of ops no converter takes (see the module docstring)."""
    _declare(policy, targets, "declare_precision")


def _declare(policy: Precision, targets: Tuple[Any, ...], declared_by: str) -> None:
    if not isinstance(policy, Precision):
        raise TypeError(f"{declared_by}: precision must be a Precision ({', '.join(p.name for p in Precision)}), "
                        f"got {policy!r}")
    for target in targets:
        earlier = _PRECISION.get(target)
        if earlier is not None and earlier[0] is not policy:
            raise ValueError(f"{declared_by} declares precision {policy.name} for {target}, but {earlier[1]} "
                             f"declared {earlier[0].name}: one op has one precision policy")
        _PRECISION.setdefault(target, (policy, declared_by))


def precision_policy(target: Any) -> Precision:
    """How `target` computes under a reduced precision; FLOAT32 unless a converter declared otherwise."""
    _ensure_converters_loaded()
    declared = _PRECISION.get(target)
    return declared[0] if declared is not None else Precision.FLOAT32


def _node_has_dynamic_shapes(node: Node) -> bool:
    def dynamic(value: Any) -> bool:
        if isinstance(value, torch.Tensor):
            return any(not isinstance(d, int) for d in value.shape)
        if isinstance(value, (list, tuple)):
            return any(dynamic(v) for v in value)
        return isinstance(value, torch.SymInt)

    values = [node.meta.get("val")]
    values += [a.meta.get("val") for a in node.all_input_nodes]
    return any(dynamic(v) for v in values)


def _host_constant(node: Node) -> bool:
    """`node` computes a tensor from weights/constants alone (get_attr ancestors, no graph input,
    no symbolic size, nothing random, no value of a type TensorRT-RTX lacks such as float64: such
    an ancestor stays in PyTorch, outside the engine), so the interpreter can fold it on the host.
    Iterative: an unsupported op deep in a large network must not exhaust Python's recursion."""
    seen, stack = set(), [node]
    while stack:
        current = stack.pop()
        if current in seen or current.op == "get_attr":
            continue
        seen.add(current)
        if current.op != "call_function" or not isinstance(current.target, torch._ops.OpOverload):
            return False
        val = current.meta.get("val")
        if (torch.Tag.nondeterministic_seeded in current.target.tags or _node_has_dynamic_shapes(current)
                or not _expressible(val)):
            return False
        stack.extend(current.all_input_nodes)
    return True


def _expressible(val: Any) -> bool:
    """A value TensorRT-RTX can hold as a constant (it has no float64, complex, ... types)."""
    from torch_tensorrt_rtx.dynamo.conversion._context import SUPPORTED_DTYPES

    values = list(val) if isinstance(val, (tuple, list)) else [val]
    return all(isinstance(v, torch.Tensor) and v.dtype in SUPPORTED_DTYPES for v in values)


def _fold_on_host(ctx, node, args, kwargs):
    raise TypeError(f"{node.name} ({node.target}) was offered for host folding but has a network tensor input")


def lookup(node: Node) -> Optional[ConverterEntry]:
    """The converter that will convert `node`, or None if no registered converter accepts it.
    An op no converter takes whose inputs are all constants (BEiT's relative-position index sum
    on int64, NF-Net's weight standardization) is accepted for folding on the host."""
    if node.op != "call_function":
        return None
    _ensure_converters_loaded()
    entry = _lookup_converter(node)
    if entry is None and _host_constant(node):
        return ConverterEntry(node.target, _fold_on_host, None, 0, True)
    return entry


def assume_dynamic_shape_support() -> bool:
    """The compile's assume_dynamic_shape_support (upstream's option): True offers dynamic-shape
    nodes to converters registered with supports_dynamic_shapes=False too."""
    from torch_tensorrt_rtx.dynamo.conversion._upstream_registry import active_settings

    settings = active_settings()
    return bool(settings is not None and settings.assume_dynamic_shape_support)


def _lookup_converter(node: Node) -> Optional[ConverterEntry]:
    entries = _REGISTRY.get(node.target)
    if not entries:
        return None
    dynamic = None
    for entry in entries:
        if not entry.supports_dynamic_shapes and not assume_dynamic_shape_support():
            if dynamic is None:
                dynamic = _node_has_dynamic_shapes(node)
            if dynamic:
                continue
        try:
            if entry.validator is None or entry.validator(node):
                return entry
        except Exception as exc:  # a validator bug must not crash compilation
            logger.warning("validator of %s failed on node %s: %s", entry.name, node.name, exc)
    return None


def registry_entries(target: Any) -> Tuple[ConverterEntry, ...]:
    """The converters registered for `target`, in the order lookup tries them."""
    _ensure_converters_loaded()
    return tuple(_REGISTRY.get(target, ()))


def refusal_reason(node: Node) -> str:
    """Why no converter takes `node`: the first validator's `Refusal` reason, else a generic one."""
    _ensure_converters_loaded()
    entries = _REGISTRY.get(node.target)
    if not entries:
        return "no converter for this op"
    for entry in entries:
        try:
            verdict = entry.validator(node) if entry.validator is not None else True
        except Exception:  # noqa: BLE001 - logged by _lookup_converter
            continue
        if isinstance(verdict, Refusal):
            return verdict.reason
    return "no converter accepts it (op, dtype or arguments)"


def op_name(node: Node) -> str:
    """A readable op name for logs: "aten.relu.default", "getitem", ..."""
    target = node.target
    if isinstance(target, torch._ops.OpOverload):
        return str(target)
    return getattr(target, "__name__", str(target))


def registered_targets() -> List[Any]:
    _ensure_converters_loaded()
    return list(_REGISTRY)


_loaded = False


def _ensure_converters_loaded() -> None:
    global _loaded
    if not _loaded:
        # Marked loaded only once every module imported: after a failure, the next lookup raises
        # the same error instead of working with part of the converters.
        from torch_tensorrt_rtx.dynamo.conversion import converters  # noqa: F401  (registers)
        _loaded = True
