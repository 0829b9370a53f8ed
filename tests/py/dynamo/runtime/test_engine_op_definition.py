"""The engine op's name and schema are defined once (definitions.toml, [engine_op]) and are what
torch has registered, whichever runtime registered it."""
import tomllib

import torch

from torch_tensorrt_rtx.dynamo import _engine_op
from torch_tensorrt_rtx.runtime.definitions import DEFINITIONS_FILE, ENGINE_OP


def test_registered_schema_is_the_defined_one():
    defined = tomllib.loads(DEFINITIONS_FILE.read_text(encoding="utf-8"))["engine_op"]
    schema = str(torch.ops.tensorrt_rtx.execute_engine.default._schema)
    assert schema == f"{defined['namespace']}::{defined['schema']}"
    assert _engine_op.OP_NAME == ENGINE_OP.qualified_name == "tensorrt_rtx::execute_engine"
