"""An exported program's weights set on a module at their qualified names, as torch's unlift sets
them (`torch.export._unlift._register_attrs_to_new_gm`), in less time.

    register_weights(module, program.graph_signature, program.state_dict, program.constants)

Torch's version looks for every path step of every weight among all children of the module it
has reached, with a regular expression per child (children may be "call names", ``layer@1``, in
unflattened programs): 12 ms of resnet50's 320 weights, a fifth of its decompositions phase. Here
a module whose children have no such name is looked up by name directly; one that has them takes
torch's own rule. Same modules, same order of registration, same kinds (parameter, persistent or
non-persistent buffer); constants (a few) are torch's to assign.
"""
from __future__ import annotations

import itertools
from typing import Any, Dict, List

import torch

_CALL_MARK = "@"


def _is_call_name(call_name: str, base: str) -> bool:
    """`call_name` is `base` or one of its call names (`base@<n>`), as torch.export.unflatten's rule."""
    from torch.export.unflatten import _is_call_name as torch_rule

    return torch_rule(call_name, base)


class _Paths:
    """Walks qualified names from a root module, creating empty modules where a step is missing."""

    def __init__(self) -> None:
        self._marked: Dict[int, bool] = {}  # id(module) -> some child's name is a call name

    def _has_call_names(self, module: torch.nn.Module) -> bool:
        marked = self._marked.get(id(module))
        if marked is None:
            marked = self._marked[id(module)] = any(_CALL_MARK in name for name in module._modules)
        return marked

    def owners(self, root: torch.nn.Module, prefix: List[str]) -> List[Any]:
        owners: List[Any] = [root]
        for item in prefix:
            found: Dict[int, Any] = {}
            for owner in owners:
                if item not in owner._modules and not hasattr(owner, item):
                    setattr(owner, item, torch.nn.Module())
                    if _CALL_MARK in item:
                        self._marked[id(owner)] = True
                if not self._has_call_names(owner):
                    if item in owner._modules:
                        child = owner._modules[item]
                        found.setdefault(id(child), child)
                    continue
                for name, child in owner._modules.items():
                    if _is_call_name(name, item):
                        found.setdefault(id(child), child)
            owners = list(found.values())
        return owners


def register_weights(module: torch.nn.Module, signature: Any, state_dict: Dict[str, Any],
                     constants: Dict[str, Any]) -> None:
    """Buffers (persistent ones from `state_dict`, the others from `constants`), then parameters,
    then lifted custom objects and tensor constants, as torch registers them."""
    paths = _Paths()
    non_persistent = set(signature.non_persistent_buffers)

    def assign(value: Any, target: str, kind: str, persistent: bool = True) -> None:
        *prefix, field = target.split(".")
        for owner in paths.owners(module, prefix):
            if kind == "parameter":
                if not isinstance(value, torch.nn.Parameter):
                    raise AssertionError(f"expected torch.nn.Parameter for {target}, got {type(value)}")
                owner.register_parameter(field, value)
            elif kind == "buffer":
                if not isinstance(value, torch.Tensor):
                    raise AssertionError(f"expected torch.Tensor for buffer {target}, got {type(value)}")
                owner.register_buffer(field, value, persistent=persistent)
            else:  # not reached: constants are torch's to assign (below)
                raise AssertionError(f"unknown kind {kind!r} for {target}")

    for name in signature.buffers:
        persistent = name not in non_persistent
        assign(state_dict[name] if persistent else constants[name], name, "buffer", persistent)
    for name in signature.parameters:
        assign(state_dict[name], name, "parameter")
    # Few, and of several kinds (tensors, script objects, opaque values): torch's own rule.
    from torch.export.unflatten import _assign_attr, _AttrKind

    for name in itertools.chain(signature.lifted_custom_objs, signature.lifted_tensor_constants):
        _assign_attr(constants[name], module, name, attr_kind=_AttrKind.CONSTANT)
