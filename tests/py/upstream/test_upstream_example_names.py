"""Names that upstream Torch-TensorRT's own examples use (found by scripts/upstream_examples.py),
written upstream's way with only the import changed. Runs on a CPU."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch

import torch_tensorrt_rtx as torch_tensorrt

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


def _run_python(code: str, extra_path: str = "") -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (extra_path, *sys.path) if p)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env,
                          timeout=120)


def test_import_tensorrt_gives_tensorrt_rtx_like_upstreams_rtx_wheel():
    # converter_overloading.py / engine_converter_binding_names.py: `import torch_tensorrt` then `import tensorrt as trt`
    done = _run_python("""
        import sys
        import torch_tensorrt_rtx as torch_tensorrt
        assert "tensorrt" not in sys.modules and "tensorrt_rtx" not in sys.modules, "nothing imported eagerly"
        import tensorrt as trt
        import tensorrt_rtx
        assert trt is tensorrt_rtx, trt
        assert trt.__spec__.name == "tensorrt_rtx"
        network_flag = trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED
        print("ok", network_flag)
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok")


def test_an_installed_tensorrt_is_never_shadowed(tmp_path):
    (tmp_path / "tensorrt").mkdir()
    (tmp_path / "tensorrt" / "__init__.py").write_text("STANDARD = True\n")
    done = _run_python("""
        import torch_tensorrt_rtx
        import tensorrt
        print(getattr(tensorrt, "STANDARD", False))
    """, extra_path=str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"


class SharedDimEncoder(torch.nn.Module):  # shared_dynamic_dims_example.py
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(1024, 64)
        self.proj = torch.nn.Linear(64, 64)

    def forward(self, input_ids, attention_mask):
        x = self.embed(input_ids)
        return self.proj(x * attention_mask.unsqueeze(-1).to(x.dtype))


def _ids(name):
    return torch_tensorrt.Input(min_shape=(1, 16), opt_shape=(4, 16), max_shape=(8, 16), dtype=torch.int64,
                                name=name, shared_dims={0: "B"})


def test_input_shared_dims_share_one_dynamic_dim():
    model = SharedDimEncoder().eval()
    trt_model = torch_tensorrt.compile(model, ir="dynamo", inputs=[_ids("input_ids"), _ids("attention_mask")],
                                       min_block_size=1, cache_built_engines=False, reuse_cached_engines=False)
    ids, mask = torch.randint(0, 1024, (2, 16)), torch.ones(2, 16, dtype=torch.int64)
    assert torch_tensorrt.verify(trt_model, ids, mask, reference_module=model).ok
    trt_kwargs = torch_tensorrt.compile(model, ir="dynamo", min_block_size=1,
                                        kwarg_inputs={"input_ids": _ids("input_ids"),
                                                      "attention_mask": _ids("attention_mask")})
    assert trt_kwargs.compile_report is not None
    assert _ids("x").dim_names == ("B", None)


def test_input_shared_dims_refusals():
    with pytest.raises(ValueError, match="out of range"):
        torch_tensorrt.Input(min_shape=(1, 16), opt_shape=(4, 16), max_shape=(8, 16), shared_dims={2: "B"})
    with pytest.raises(ValueError, match="dim_names and 'B' by shared_dims"):
        torch_tensorrt.Input(min_shape=(1, 16), opt_shape=(4, 16), max_shape=(8, 16), dim_names=("batch", None),
                             shared_dims={0: "B"})
    with pytest.raises(ValueError, match="static"):  # a shared name on a static axis
        torch_tensorrt.Input(min_shape=(1, 16), opt_shape=(4, 16), max_shape=(8, 16), shared_dims={1: "S"})


def test_dynamo_utils_cosine_similarity():
    from torch_tensorrt_rtx.dynamo.utils import COSINE_THRESHOLD, cosine_similarity

    x = torch.randn(4, 8)
    assert cosine_similarity(x, x.clone()) == 1.0
    assert cosine_similarity(torch.zeros(3), torch.zeros(3)) == 1.0
    assert cosine_similarity(x, -x) < -0.99
    assert cosine_similarity(x, x + 1e-4 * torch.randn(4, 8)) > COSINE_THRESHOLD
    with pytest.raises(ValueError, match="elements"):
        cosine_similarity(x, torch.randn(3))
    assert torch_tensorrt.dynamo.utils.COSINE_THRESHOLD == COSINE_THRESHOLD
