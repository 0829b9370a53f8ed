"""torch_tensorrt_rtx.compile_reports(): the reports of torch.compile builds made inside a block."""
from __future__ import annotations

import threading

import torch
import torch.nn as nn

import torch_tensorrt_rtx as trtx

OPTIONS = {"min_block_size": 1, "progress": False}


def _run(compiled, x):
    """Call `compiled` (engines run on the CPU reference executor: there is no GPU here)."""
    assert trtx.verify(compiled, x).engines


def _compiled(width: int):
    torch._dynamo.reset()
    model = nn.Sequential(nn.Linear(width, width), nn.ReLU()).eval()
    return torch.compile(model, backend="tensorrt_rtx", dynamic=False, options=OPTIONS)


def test_nested_blocks_each_collect_the_builds_inside_them():
    compiled = _compiled(8)
    with trtx.compile_reports() as outer:
        _run(compiled, torch.randn(2, 8))
        with trtx.compile_reports() as inner:
            _run(compiled, torch.randn(3, 8))  # a new static shape: a second build
            _run(compiled, torch.randn(3, 8))  # reuses it: nothing new
    _run(compiled, torch.randn(4, 8))  # outside every block
    assert len(outer) == 2 and len(inner) == 1
    assert inner[0] is outer[1]
    assert inner[0].engines and not inner[0].fallback_ops, inner[0].format()
    torch._dynamo.reset()


def test_builds_on_another_thread_are_not_collected():
    compiled = _compiled(4)
    with trtx.compile_reports() as reports:
        worker = threading.Thread(target=_run, args=(compiled, torch.randn(2, 4)))
        worker.start()
        worker.join()
        _run(compiled, torch.randn(2, 4))  # built already, by the worker: nothing new here either
    assert reports == []
    torch._dynamo.reset()
