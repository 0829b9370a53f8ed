"""Weightless engines on a real RTX GPU (run by scripts/rtx_acceptance.sh; skipped elsewhere):
a stripped build, a .pt2 holding each weight once, refit on first load, refit_module_weights, on
the Python runtime and on the C++ runtime."""
from __future__ import annotations

import warnings

import pytest
import torch

import torch_tensorrt_rtx as trtx

pytestmark = pytest.mark.rtx_gpu


def _model(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(256, 512), torch.nn.ReLU(), torch.nn.Linear(512, 64)).eval().cuda()


def _compile(model, x, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return trtx.compile(model, inputs=[x], min_block_size=1, progress=False, **options)


def test_weightless_pt2_refits_on_first_load(tmp_path):
    model, x = _model(0), torch.randn(8, 256, device="cuda")
    normal, weightless = tmp_path / "normal.pt2", tmp_path / "weightless.pt2"
    trtx.save(_compile(model, x), normal, inputs=[x])
    trtx.save(_compile(model, x, strip_engine_weights=True), weightless, inputs=[x])
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    ratio = weightless.stat().st_size / weight_bytes
    print(f"weightless .pt2: {weightless.stat().st_size} bytes = {ratio:.3f}x the weights "
          f"({weight_bytes} bytes); normal .pt2: {normal.stat().st_size} bytes")
    torch.testing.assert_close(trtx.load(weightless).module()(x), model(x), rtol=1e-2, atol=1e-2)


def test_refit_module_weights_on_gpu():
    model, x = _model(0), torch.randn(8, 256, device="cuda")
    compiled = _compile(model, x, immutable_weights=False)
    torch.testing.assert_close(compiled(x), model(x), rtol=1e-2, atol=1e-2)
    new = _model(1)
    trtx.dynamo.refit_module_weights(compiled, new, arg_inputs=[x], verify_output=True)
    torch.testing.assert_close(compiled(x), new(x), rtol=1e-2, atol=1e-2)


# Both runtimes refit the same saved weightless program on first load, and again after
# refit_module_weights, each in its own process: the Python runtime (no C++ library) and the C++
# runtime (the installed library, which scripts/rtx_acceptance.sh builds with --config=rtx when
# TENSORRT_RTX_HOME is set).
RUN_ON_RUNTIME = r"""
import sys, torch
import torch_tensorrt_rtx as trtx
from torch_tensorrt_rtx.dynamo import _engine_op
program, x, new_weights, out = sys.argv[1:5]
if sys.argv[5] == "cxx" and not _engine_op.NATIVE:
    print("no TensorRT-RTX backend in the C++ runtime library")
    sys.exit(3)
assert _engine_op.NATIVE == (sys.argv[5] == "cxx")
loaded = trtx.load(program).module()
x = torch.load(x)
first = loaded(x)
trtx.dynamo.refit_module_weights(loaded, torch.load(new_weights))
torch.save([first.cpu(), loaded(x).cpu()], out)
print("ran")
"""


@pytest.mark.parametrize("runtime", ["python", "cxx"])
def test_each_runtime_refits_a_weightless_pt2(runtime, tmp_path):
    import os
    import subprocess
    import sys

    from torch_tensorrt_rtx.runtime import _native

    model, x = _model(0), torch.randn(8, 256, device="cuda")
    program = tmp_path / "weightless.pt2"
    trtx.save(_compile(model, x, strip_engine_weights=True), program, inputs=[x])
    new = _model(1)
    torch.save(x, tmp_path / "x.pt")
    torch.save(new.state_dict(), tmp_path / "new.pt")
    library = "" if runtime == "python" else str(_native.LIB_DIR / _native.RUNTIME_LIBRARY_NAME)
    env = dict(os.environ, TORCH_TENSORRT_RTX_RUNTIME_LIBRARY=library)
    done = subprocess.run([sys.executable, "-c", RUN_ON_RUNTIME, str(program), str(tmp_path / "x.pt"),
                           str(tmp_path / "new.pt"), str(tmp_path / "out.pt"), runtime],
                          capture_output=True, text=True, env=env, timeout=900)
    if done.returncode == 3:
        pytest.skip("the C++ runtime library has no TensorRT-RTX backend: set TENSORRT_RTX_HOME and run "
                    "scripts/build_native.sh --config=rtx (scripts/rtx_acceptance.sh does)")
    assert done.returncode == 0, done.stderr[-4000:]
    first, refitted = torch.load(tmp_path / "out.pt")
    torch.testing.assert_close(first, model(x).cpu(), rtol=1e-2, atol=1e-2)
    torch.testing.assert_close(refitted, new(x).cpu(), rtol=1e-2, atol=1e-2)
