"""Upstream's ``MutableTorchTensorRTModule``: a model that compiles itself with refittable
engines at its first call and refits them (``refit_module_weights``) when its weights changed.

    mutable = torch_tensorrt_rtx.MutableTorchTensorRTModule(model, min_block_size=1)
    mutable(x)                            # compiles (immutable_weights=False)
    mutable.load_state_dict(new_weights)  # or mutable.fc.weight = ..., or in-place edits
    mutable(x)                            # refits, no rebuild

Weights changed means a tensor of the model's state dict was replaced or written in place (its
storage or its version counter moved). Inputs of other shapes or dtypes than the first compile
compile again. The model's attributes are reachable through the wrapper (``mutable.fc``).
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import torch


def _input_signature(args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Tuple[Any, ...]:
    leaves = torch.utils._pytree.tree_leaves((args, kwargs))
    return tuple((tuple(t.shape), t.dtype, t.device) if isinstance(t, torch.Tensor) else repr(t) for t in leaves)


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

    def _weights_now(self) -> Dict[str, Tuple[int, int]]:
        return {name: (t.data_ptr(), t._version) for name, t in self.original_model.state_dict(keep_vars=True).items()}

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        from torch_tensorrt_rtx._compile import compile as compile_program
        from torch_tensorrt_rtx.dynamo._refit import refit

        signature = _input_signature(args, kwargs)
        if self._compiled is None or signature != self._signature:
            self._compiled = compile_program(self.original_model, arg_inputs=list(args), kwarg_inputs=kwargs or None,
                                             **self._settings)
            self._signature = signature
        elif self._weights_now() != self._seen:
            refit(self._compiled, self.original_model)
        self._seen = self._weights_now()
        return self._compiled(*args, **kwargs)

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:
        """The model's weights (refitted into the engines at the next call)."""
        return self.original_model.load_state_dict(state_dict, strict=strict, assign=assign)

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self._modules["original_model"], name)
