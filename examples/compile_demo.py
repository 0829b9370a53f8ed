"""Compile the built-in example models with TensorRT-RTX on whatever machine this runs on.

    .venv/bin/python examples/compile_demo.py [--out DIR (default build/compiled_models)] [--dtype float32|float16|bfloat16]

For each model (an MLP and a small CNN, defined in examples/models.py; nothing is downloaded):
1. compile ahead of time with a dynamic batch dimension (engines build on the CPU; no GPU needed),
2. print the compile summary (subgraphs, converted vs PyTorch ops, build time, engine bytes),
3. run every engine through the CPU reference executor and compare with eager PyTorch,
4. save the program as a .pt2 with the engines embedded, and load it back,
5. on a supported RTX GPU only: run the engines and time them against eager PyTorch.
Also shows torch.compile(model, backend="tensorrt_rtx") on the MLP.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root

import torch_tensorrt_rtx as trtx  # noqa: E402
from examples import models  # noqa: E402
from torch_tensorrt_rtx.runtime import supported_gpu  # noqa: E402
from torch_tensorrt_rtx.runtime.device import describe_targets  # noqa: E402

CASES = {
    "mlp": dict(min_shape=(1, 256), opt_shape=(16, 256), max_shape=(64, 256)),
    "cnn": dict(min_shape=(1, 3, 32, 32), opt_shape=(8, 3, 32, 32), max_shape=(32, 3, 32, 32)),
}


def _time(fn, x, iters=50):
    for _ in range(5):
        fn(x)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(iters):
        fn(x)
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / iters * 1e3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="build/compiled_models", help="directory for the .pt2 files")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    args = parser.parse_args()
    # torch.export's own deprecation noise (pytree LeafSpec) is not about this program.
    warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    dtype = getattr(torch, args.dtype)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    gpu = supported_gpu()
    print(f"torch_tensorrt_rtx {trtx.__version__}, torch {torch.__version__}; GPU: {gpu.reason}")
    ok = True
    for name, shapes in CASES.items():
        model = models.build_demo(name).to(dtype)
        spec = trtx.Input(**shapes, dtype=dtype)
        print(f"\n=== {name}: compile (dynamic batch {shapes['min_shape'][0]}..{shapes['max_shape'][0]}, {args.dtype})")
        compiled = trtx.compile(model, [spec], min_block_size=1)
        print(compiled.compile_report.format())

        print(f"--- {name}: reference executor (CPU) vs eager PyTorch")
        for batch in (shapes["min_shape"][0], 5, shapes["max_shape"][0]):
            x = torch.randn((batch,) + tuple(shapes["opt_shape"][1:])).to(dtype)
            report = trtx.verify(compiled, x, reference_module=model)
            ok &= report.ok
            print(f"batch {batch}: {report}")

        path = out_dir / f"{name}.pt2"
        trtx.save(compiled, path)
        records = trtx.engine_records(trtx.load(path))
        sizes = ", ".join(f"{r.name} {len(r.engine):,} B" for r in records.values())
        print(f"--- {name}: saved {path} ({path.stat().st_size:,} bytes; engines: {sizes}); loaded back OK")

        if gpu.supported:
            x = torch.randn(shapes["opt_shape"]).to(dtype).cuda()
            program = trtx.load(path).module().cuda()
            eager = model.cuda()
            with torch.no_grad():
                torch.testing.assert_close(program(x).float(), eager(x).float(), rtol=2e-2, atol=2e-2)
                t_trt, t_eager = _time(program, x), _time(eager, x)
            print(f"--- {name}: on {gpu.reason}: TensorRT-RTX {t_trt:.3f} ms vs eager {t_eager:.3f} ms "
                  f"per batch of {shapes['opt_shape'][0]} ({t_eager / t_trt:.2f}x)")
        else:
            print(f"--- {name}: skipping GPU execution and timing: {gpu.reason}. "
                  f"Needs an RTX GPU with compute capability {describe_targets()}.")

    print("\n=== torch.compile(mlp, backend=\"tensorrt_rtx\")")
    model = models.build_demo("mlp").to(dtype)
    compiled = torch.compile(model, backend="tensorrt_rtx", dynamic=False, options={"min_block_size": 1})
    x = torch.randn(4, 256).to(dtype)
    report = trtx.verify(compiled, x, reference_module=model)
    ok &= report.ok
    print(report)
    print("\nALL CHECKS PASSED" if ok else "\nSOME CHECKS FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
