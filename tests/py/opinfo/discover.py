"""Which ATen ops each OpInfo's samples become after torch_tensorrt_rtx's export and lowering.

    .venv/bin/python -m tests.py.opinfo.discover          # rewrites tests/py/opinfo/opinfo_ops.json

Converters see the graph after torch.export, our decomposition table and our lowering passes, so
an OpInfo exercises a converter when that converter's op appears in its lowered graph (names can
mislead both ways: `addcmul` arrives as mul and add, `nn.functional.relu` as relu). For each
OpInfo this exports up to `SAMPLES` of its samples (float32, else float16) as one module and
records the lowered graph's ATen ops. The file is data for `ledger`: which OpInfos to run for
which converters. Re-run it when the decomposition table or the lowering passes change.
"""
from __future__ import annotations

import json
import pathlib
import sys
import time
import warnings

import torch

from tests.py.opinfo.samples import Batch, batch_inputs, dtypes_to_run, op_db, sample_cases

OPS_FILE = pathlib.Path(__file__).with_name("opinfo_ops.json")
SAMPLES = 8


def lowered_ops(module: torch.nn.Module, inputs) -> list:
    from torch_tensorrt_rtx.dynamo._export import export_aten
    from torch_tensorrt_rtx.dynamo._input import as_inputs
    from torch_tensorrt_rtx.dynamo.conversion._registry import op_name
    from torch_tensorrt_rtx.dynamo.lowering import lower

    exported = export_aten(module, as_inputs(inputs))
    gm = lower(exported.graph_module)
    return sorted({op_name(n) for n in gm.graph.nodes if n.op == "call_function"})


def discover_one(op) -> dict:
    dtypes = dtypes_to_run(op)
    if not dtypes:
        return {"error": "supports neither float32 nor float16 on CPU"}
    cases, _ = sample_cases(op, dtypes[0], limit=SAMPLES)
    if not cases:
        return {"error": "no applicable sample"}
    try:
        return {"ops": lowered_ops(Batch(cases), batch_inputs(cases))}
    except Exception:  # noqa: BLE001 - one sample export cannot trace must not hide the others
        ops, errors = set(), []
        for case in cases:
            try:
                ops.update(lowered_ops(Batch([case]), batch_inputs([case])))
            except Exception as exc:  # noqa: BLE001
                errors.append(f"{type(exc).__name__}: {str(exc).splitlines()[0][:150] if str(exc) else ''}")
        return {"ops": sorted(ops)} if ops else {"error": errors[0]}


def main(argv=None) -> int:
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    found = {}
    start = time.perf_counter()
    for k, (name, op) in enumerate(sorted(op_db().items())):
        found[name] = discover_one(op)
        if k % 50 == 0:
            print(f"{k}/{len(op_db())} {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    OPS_FILE.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n")
    print(f"wrote {OPS_FILE} ({len(found)} OpInfos) in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
