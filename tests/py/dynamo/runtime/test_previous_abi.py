"""Programs saved before the engine record's last ABI bump keep loading: data/abi1_sm86_sm89.pt2
was written by the code of ABI version 1 (data/README.md). Both decoders read it into the
current fields, the same ones; the compute capabilities it kept inside its metadata become
the COMPUTE_CAPABILITIES field."""
from __future__ import annotations

import json
from pathlib import Path

import torch

import torch_tensorrt_rtx as trtx
from torch_tensorrt_rtx.runtime import LAYOUT, EngineRecord

from scripted_child import run_scripted_child

SAVED = Path(__file__).parent / "data" / "abi1_sm86_sm89.pt2"
BUFFER = "_run_on_trt_0_engine"


def _packed() -> torch.Tensor:
    return trtx.load(SAVED).state_dict[BUFFER]


def test_the_file_holds_a_record_of_the_previous_abi_version():
    packed = bytes(_packed().numpy())
    assert packed[:8] == LAYOUT.pack_magic
    assert int.from_bytes(packed[8:12], "little") == LAYOUT.previous_abi_version != LAYOUT.abi_version


def test_python_decoder_reads_it_into_the_current_fields():
    record = EngineRecord.from_tensor(_packed())
    assert (record.name, record.input_names, record.output_names) == ("_run_on_trt_0", ["input_0"], ["output_0"])
    assert record.target_capabilities == ["SM86", "SM89"] and record.engine_flavor == "tensorrt_rtx"
    again = EngineRecord.unpack(record.pack())  # re-packed: the current version
    assert again.to_list() == record.to_list()
    assert int.from_bytes(bytes(record.pack()[8:12]), "little") == LAYOUT.abi_version


def test_cxx_decoder_reads_the_same_fields_and_the_cxx_runtime_loads_the_program():
    out = run_scripted_child("""
import json
program = torch_tensorrt_rtx.load(sys.argv[1])
fields = list(torch.ops.ttrx_test.record_fields(program.state_dict[sys.argv[2]]))
try:
    program.module()(torch.ones(2, 3))
    error = ""
except RuntimeError as exc:
    error = str(exc).splitlines()[0]
print(json.dumps({"fields": fields, "error": error}))
""", str(SAVED), BUFFER).stdout
    result = json.loads(out.strip().splitlines()[-1])
    record = EngineRecord.from_tensor(_packed())
    engine = LAYOUT.index("ENGINE")
    expected = [f"{len(f)} bytes" if i == engine else f.decode() for i, f in enumerate(record.to_list())]
    assert result["fields"] == expected
    # The record decoded and its engine was handed to the (scripted) backend, which does not
    # take a real TensorRT-RTX engine: the contract's verdict, naming the engine.
    assert "engine '_run_on_trt_0': engine bytes are not a serialized TensorRT-RTX engine" in result["error"]
