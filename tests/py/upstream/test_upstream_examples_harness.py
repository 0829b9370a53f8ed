"""scripts/upstream_examples.py: what it rewrites, how it splits steps and classes their errors."""
from __future__ import annotations

import os
import sys
import textwrap


sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "scripts"))
from upstream_example_steps import _StandIn, classify, rewrite_imports, split_steps  # noqa: E402
from upstream_examples import resolve_name_errors  # noqa: E402


def test_only_upstreams_imports_are_rewritten_line_for_line():
    source = textwrap.dedent("""\
        import torch
        import torch_tensorrt
        import torch_tensorrt as torchtrt
        from torch_tensorrt.dynamo import refit_module_weights
        import torch_tensorrt.dynamo
        x = "torch_tensorrt"  # a string stays
        """)
    new, changed = rewrite_imports(source)
    assert changed == 4
    assert new.splitlines() == [
        "import torch",
        "import torch_tensorrt_rtx as torch_tensorrt",
        "import torch_tensorrt_rtx as torchtrt",
        "from torch_tensorrt_rtx.dynamo import refit_module_weights",
        "import torch_tensorrt_rtx.dynamo; import torch_tensorrt_rtx as torch_tensorrt",
        'x = "torch_tensorrt"  # a string stays',
    ]


def test_cells_are_steps_and_code_free_cells_are_not():
    source = '"""doc"""\n# %%\nimport torch\nx = 1\n# %%\n# only words\n# %%\ny = x + 1\nprint(y)\n'
    assert [[n.lineno for n in step] for step in split_steps(source)] == [[3, 4], [8, 9]]


def test_paragraphs_are_steps_without_cells_and_main_is_split_too():
    source = textwrap.dedent("""\
        import torch

        def f():

            return 1
        a = f()
        b = a

        if __name__ == "__main__":
            c = 1

            d = 2
        """)
    assert [[n.lineno for n in step] for step in split_steps(source)] == [[1, 3, 6, 7], [10], [12]]


def _raised(exc_type, *args):
    try:
        raise exc_type(*args)
    except BaseException as exc:  # noqa: BLE001
        return exc


def test_classes_come_from_the_exception():
    assert classify(_raised(AssertionError, "Torch not compiled with CUDA enabled"))[0] == "needs_gpu"
    assert classify(_raised(OSError, "We couldn't connect to 'https://huggingface.co'"))[0] == "needs_network"
    missing = ModuleNotFoundError("No module named 'triton'", name="triton")
    assert classify(missing) == ("needs_package", "triton")
    ours = ModuleNotFoundError("No module named 'torch_tensorrt_rtx.x'", name="torch_tensorrt_rtx.x")
    assert classify(ours)[0] == "fails"
    assert classify(_raised(TypeError, "unexpected keyword argument 'ir'"))[0] == "fails"


def test_names_missing_because_of_an_earlier_step_are_blocked_by_its_class():
    results = [{"step": 0, "class": "needs_gpu", "binds": ["model"]},
               {"step": 1, "class": "fails", "detail": "TypeError: bad", "binds": ["trt_gm"]},
               {"step": 2, "class": "name_error", "detail": "model", "binds": []},
               {"step": 3, "class": "name_error", "detail": "trt_gm", "binds": []},
               {"step": 4, "class": "name_error", "detail": "never_bound", "binds": []}]
    classes = [r["class"] for r in resolve_name_errors(results)]
    assert classes == ["needs_gpu", "fails", "blocked_gpu", "blocked_fail", "fails"]


def test_the_cpu_stand_in_moves_placements_but_not_the_packages_device():
    import ast

    tree = _StandIn({"torch_tensorrt"}).visit(ast.parse(
        'm = Model().cuda()\nx = torch.randn(2, device="cuda")\nt = torch_tensorrt.compile(m, device="cuda:0")\n'
        'r = models.resnet18(pretrained=True)'))
    text = ast.unparse(tree)
    assert "Model().cpu()" in text and "__standin_cpu__('cpu')" in text
    assert "torch_tensorrt.compile(m, device='cuda:0')" in text
    assert "pretrained=False" in text
