"""ConversionContext: what a converter sees while it lowers one FX node into the network.

It owns the strongly typed `INetworkDefinition`, keeps host copies of constant weights alive
until the engine is built, and offers the helpers every converter needs: constants, casts,
rank alignment for broadcasting, and shape tensors (IShapeLayer based, so shapes stay correct
under dynamic dimensions instead of baking Python ints into the engine).

Every layer a converter adds is named "<fx node name>/<suffix>", and the tensor a node produces
is named after the node: the reference executor and `verify` use this to map layers back to FX.
"""
from __future__ import annotations

import itertools
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import tensorrt_rtx as trt
import torch
from torch.fx import Node

_TORCH_TO_TRT = {
    torch.float32: trt.float32,
    torch.float16: trt.float16,
    torch.bfloat16: trt.bfloat16,
    torch.int32: trt.int32,
    torch.int64: trt.int64,
    torch.bool: trt.bool,
    torch.uint8: trt.uint8,
    torch.int8: trt.int8,
}
_TRT_TO_TORCH = {v: k for k, v in _TORCH_TO_TRT.items()}
FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
SUPPORTED_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.int32, torch.int64, torch.bool)


def to_trt_dtype(dtype: torch.dtype) -> "trt.DataType":
    try:
        return _TORCH_TO_TRT[dtype]
    except KeyError:
        raise TypeError(f"dtype {dtype} has no TensorRT-RTX equivalent in this compiler") from None


def to_torch_dtype(dtype: "trt.DataType") -> torch.dtype:
    return _TRT_TO_TORCH[dtype]


class ConversionError(RuntimeError):
    """A node could not be converted; the message names the node. `node` is the FX node's name
    when one node is to blame (the pipeline then keeps only that node in PyTorch)."""

    def __init__(self, message: str, node: Optional[str] = None) -> None:
        super().__init__(message)
        self.node = node


def tensor_identity(value: torch.Tensor) -> tuple:
    """Which bytes a tensor views: equal for tied weights (GPT-2's embedding table and LM head)."""
    return (value.data_ptr(), value.dtype, tuple(value.shape), value.stride(), value.device)


def weight_key(value: torch.Tensor) -> tuple:
    """Which bytes a contiguous tensor holds, whatever its shape (a reshaped weight is the weight)."""
    return (value.untyped_storage().data_ptr(), value.storage_offset(), value.numel(), value.dtype, value.device)


class ConversionContext:
    def __init__(self, network: "trt.INetworkDefinition", name_weights: bool = False) -> None:
        self.network = network
        # Weightless/refittable engines: every constant's weights get a TensorRT weight name (the
        # parameter's FX name where it is one, else its layer's name) and are kept here by name.
        self.name_weights = name_weights
        self.weight_names: Dict[tuple, str] = {}  # weight_key of a get_attr weight -> its name
        self.refit_weights: Dict[str, torch.Tensor] = {}
        self.named_constant_layers: set = set()  # names of the constant layers whose weights are named
        self.weight_sources: Dict[str, frozenset] = {}  # FX node -> model weights it is computed from
        # TensorRT weight name of a constant computed from model weights -> those weights' names
        # (refit_module_weights refuses to change them: the engine holds a value derived at build).
        self.derived_weights: Dict[str, List[str]] = {}
        self.node: Optional[Node] = None
        self._keepalive: List[np.ndarray] = []
        self._weights: Dict[tuple, Tuple[torch.Tensor, "trt.ITensor"]] = {}  # one constant per weight
        self.folds: Dict[Any, Any] = {}  # host-folded results by (op, argument identities): see _interpreter._fold
        # Constants whose reshapes are done on the host (see _reshaped_constant): the output's name ->
        # (that output, its host tensor); and each reshape made, by (name, shape).
        self._host_constants: Dict[str, Tuple["trt.ITensor", torch.Tensor]] = {}
        self._reshaped_constants: Dict[Tuple[str, tuple], "trt.ITensor"] = {}
        self._counter = itertools.count()

    # -- naming -------------------------------------------------------------------------
    def name(self, layer: "trt.ILayer", suffix: str = "") -> "trt.ILayer":
        base = self.node.name if self.node is not None else "network"
        layer.name = f"{base}/{suffix or layer.type.name.lower()}_{next(self._counter)}"
        return layer

    # -- constants and casts ------------------------------------------------------------
    def constant(self, value: Union[torch.Tensor, float, int, bool, Sequence], dtype: Optional[torch.dtype] = None,
                 rank: Optional[int] = None) -> "trt.ITensor":
        """A constant ITensor. Scalars get shape [1]*rank (for broadcasting) or []. A tensor given
        as is (no dtype, no rank) becomes one constant however many nodes use it."""
        if isinstance(value, torch.Tensor) and dtype is None and rank is None and value.numel() > 1:
            key = tensor_identity(value)
            if key not in self._weights:
                self._weights[key] = (value, self._new_constant(value, None, None))
            return self._weights[key][1]
        return self._new_constant(value, dtype, rank)

    def _name_weights(self, weights: "trt.Weights", name: str, host: torch.Tensor) -> None:
        if name in self.refit_weights or not self.network.set_weights_name(weights, name):
            raise ValueError(f"weight name {name!r} is taken twice or refused by TensorRT-RTX")
        self.refit_weights[name] = host

    def check_weights_named(self) -> None:
        """Weightless engines: every constant layer with weights must have come through
        ``constant`` (a converter that calls ``network.add_constant`` itself leaves its weights
        unnamed, so the program could not refit them): its node stays in PyTorch."""
        for i in range(self.network.num_layers):
            layer = self.network.get_layer(i)
            if layer.type == trt.LayerType.CONSTANT and layer.name not in self.named_constant_layers:
                if int(trt.volume(layer.get_output(0).shape)) > 0:
                    raise ConversionError(f"constant layer {layer.name!r} was added without ctx.constant(...): its "
                                          "weights have no name, so a weightless/refittable engine cannot be "
                                          "refitted with them", node=layer.name.split("/", 1)[0])

    def note_weight(self, value: torch.Tensor, name: str) -> None:
        """`value` is the model's weight `name` (a get_attr node): constants of its bytes
        (also reshaped, as converters often do) get that TensorRT weight name."""
        self.weight_names.setdefault(weight_key(value), name)

    def _new_constant(self, value: Any, dtype: Optional[torch.dtype], rank: Optional[int]) -> "trt.ITensor":
        if not isinstance(value, torch.Tensor):
            value = torch.tensor(value, dtype=dtype)
        if dtype is not None:
            value = value.to(dtype)
        if rank is not None and value.dim() < rank:
            value = value.reshape((1,) * (rank - value.dim()) + tuple(value.shape))
        value = value.detach().cpu().contiguous()
        target = value.dtype
        # numpy has no bfloat16: store as fp32 and cast inside the network (explicit in a
        # strongly typed network, so the reference executor sees the same precision).
        host = value.float() if target == torch.bfloat16 else value
        array = np.ascontiguousarray(host.numpy())
        self._keepalive.append(array)
        shape = tuple(value.shape)
        weights = trt.Weights(array) if array.size else trt.Weights(to_trt_dtype(host.dtype))
        layer = self.network.add_constant(shape, weights)
        self.name(layer, "constant")
        if self.name_weights and array.size:
            weight_name = self.weight_names.get(weight_key(value))
            if weight_name is None or weight_name in self.refit_weights:  # derived, or its second use
                weight_name = layer.name
                sources = self.weight_sources.get(self.node.name, frozenset()) if self.node is not None else ()
                if sources and host.is_floating_point() and host.numel() > 1:  # not a shape or scalar constant
                    self.derived_weights[weight_name] = sorted(sources)
            self._name_weights(weights, weight_name, host)
            self.named_constant_layers.add(layer.name)
        out = layer.get_output(0)
        if target == torch.bfloat16:
            out = self.cast(out, torch.bfloat16)
        if not self.name_weights:
            self._host_constants[out.name] = (out, value)
        return out

    def _reshaped_constant(self, tensor: "trt.ITensor", shape: Sequence[int]) -> Optional["trt.ITensor"]:
        """`tensor` reshaped to `shape` on the host, as a constant of its own, when `tensor` is a
        constant this context made; else None. A shuffle or unsqueeze of a constant is folded by
        TensorRT-RTX at build time anyway, at a cost of 1-3 ms of build per layer (measured: BERT's
        and ViT's linear layers unsqueeze every weight and bias, the VAE's group norms reshape
        theirs); the engine gets the same values either way. Not for weightless/refittable builds,
        where each constant carries its model weight's name (no constant is recorded there)."""
        entry = self._host_constants.get(tensor.name)
        if entry is None or entry[0] is not tensor:  # not ours, or renamed since
            return None
        key = (tensor.name, tuple(shape))
        if key not in self._reshaped_constants:  # one constant per distinct reshape, however many users
            self._reshaped_constants[key] = self._new_constant(entry[1].reshape(tuple(shape)), None, None)
        return self._reshaped_constants[key]

    def cast(self, tensor: "trt.ITensor", dtype: torch.dtype) -> "trt.ITensor":
        if tensor.dtype == to_trt_dtype(dtype):
            return tensor
        return self.name(self.network.add_cast(tensor, to_trt_dtype(dtype)), "cast").get_output(0)

    def as_tensor(self, value: Any, dtype: torch.dtype, rank: int = 0) -> "trt.ITensor":
        """An ITensor of `dtype` from an ITensor, torch tensor or Python scalar."""
        if isinstance(value, trt.ITensor):
            return self.cast(value, dtype)
        return self.constant(value, dtype, rank)

    # -- broadcasting -------------------------------------------------------------------
    def unsqueeze_leading(self, tensor: "trt.ITensor", rank: int) -> "trt.ITensor":
        missing = rank - len(tensor.shape)
        if missing <= 0:
            return tensor
        folded = self._reshaped_constant(tensor, (1,) * missing + tuple(tensor.shape))
        if folded is not None:
            return folded
        axes = self.constant(torch.arange(missing, dtype=torch.int64))
        return self.name(self.network.add_unsqueeze(tensor, axes), "unsqueeze").get_output(0)

    def broadcast_ranks(self, *tensors: "trt.ITensor") -> List["trt.ITensor"]:
        rank = max(len(t.shape) for t in tensors)
        return [self.unsqueeze_leading(t, rank) for t in tensors]

    # -- shapes -------------------------------------------------------------------------
    def shape_of(self, tensor: "trt.ITensor") -> "trt.ITensor":
        """1-D int64 tensor with the runtime shape of `tensor`."""
        return self.name(self.network.add_shape(tensor), "shape").get_output(0)

    def dim_of(self, tensor: "trt.ITensor", axis: int) -> "trt.ITensor":
        """1-D int64 tensor of length 1: the runtime size of `axis`."""
        if tensor.shape[axis] >= 0:
            return self.constant(torch.tensor([tensor.shape[axis]], dtype=torch.int64))
        index = self.constant(torch.tensor([axis], dtype=torch.int64))
        layer = self.network.add_gather(self.shape_of(tensor), index, 0)
        return self.name(layer, "dim").get_output(0)

    def shape_tensor(self, parts: Sequence[Union[int, "trt.ITensor"]]) -> "trt.ITensor":
        """Concatenate ints and 1-element int64 ITensors into a 1-D int64 shape tensor."""
        pieces = []
        for part in parts:
            if isinstance(part, trt.ITensor):
                if len(part.shape) == 0:
                    part = self.unsqueeze_leading(part, 1)
                pieces.append(self.cast(part, torch.int64))
            else:
                pieces.append(self.constant(torch.tensor([int(part)], dtype=torch.int64)))
        if len(pieces) == 1:
            return pieces[0]
        layer = self.network.add_concatenation(pieces)
        layer.axis = 0
        return self.name(layer, "shape_concat").get_output(0)

    def reshape(self, tensor: "trt.ITensor", parts: Sequence[Union[int, "trt.ITensor"]]) -> "trt.ITensor":
        """Reshape to `parts` (ints, -1 for one inferred dim, or 1-element ITensors)."""
        if all(isinstance(p, int) for p in parts):
            folded = self._reshaped_constant(tensor, parts)
            if folded is not None:
                return folded
        layer = self.network.add_shuffle(tensor)
        if all(isinstance(p, int) for p in parts):
            layer.reshape_dims = tuple(parts)
        else:
            layer.set_input(1, self.shape_tensor(parts))
        # Never treat a 0 in the target shape as "copy the input dim": that is not torch semantics.
        layer.zero_is_placeholder = False
        return self.name(layer, "reshape").get_output(0)


def node_dtype(node: Node) -> torch.dtype:
    val = node.meta.get("val")
    if not isinstance(val, torch.Tensor):
        raise ConversionError(f"node {node.name} ({node.target}) has no tensor metadata")
    return val.dtype


def normalize_axis(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis
