"""register_weights sets an exported program's weights exactly as torch's unlift does."""
import torch
import torch.nn as nn
from torch.export._unlift import _register_attrs_to_new_gm

from torch_tensorrt_rtx.dynamo._unlift_weights import register_weights


class _Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        self.bn = nn.BatchNorm2d(3)
        self.register_buffer("offset", torch.ones(3, 1, 1), persistent=False)

    def forward(self, x):
        return self.bn(self.conv(x)) + self.offset


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 3, 1)
        self.layers = nn.Sequential(_Block(), _Block())
        self.table = torch.arange(3.0).reshape(3, 1, 1)  # a lifted tensor constant
        self.head = nn.Linear(3, 2)

    def forward(self, x):
        y = self.layers(self.stem(x)) * self.table
        return self.head(y.mean((2, 3)))


def _layout(module):
    return ([(n, id(p)) for n, p in module.named_parameters()], [(n, id(b)) for n, b in module.named_buffers()],
            list(module.state_dict()), [n for n, _ in module.named_modules()],
            [(n, id(getattr(module.get_submodule(n.rpartition(".")[0]), n.rpartition(".")[2])))
             for n in ("table",)])


def test_the_same_modules_and_weights_as_torch():
    program = torch.export.export(_Net().eval(), (torch.randn(2, 3, 4, 4),), strict=False)
    ours, theirs = nn.Module(), nn.Module()
    register_weights(ours, program.graph_signature, program.state_dict, program.constants)
    _register_attrs_to_new_gm(theirs, program.graph_signature, program.state_dict, program.constants)
    assert _layout(ours) == _layout(theirs)
    assert "layers.0.offset" not in ours.state_dict()  # non-persistent, as torch's
    assert len(list(ours.named_parameters())) == 12


def test_call_names_get_the_weight_too_as_in_torch():
    program = torch.export.export(_Net().eval(), (torch.randn(2, 3, 4, 4),), strict=False)
    ours, theirs = nn.Module(), nn.Module()
    for root in (ours, theirs):
        root.add_module("layers@1", nn.Module())  # an unflattened program's second call of `layers`
    register_weights(ours, program.graph_signature, program.state_dict, program.constants)
    _register_attrs_to_new_gm(theirs, program.graph_signature, program.state_dict, program.constants)
    assert _layout(ours) == _layout(theirs)
    assert ours.get_submodule("layers@1.0.conv").weight is ours.get_submodule("layers.0.conv").weight
