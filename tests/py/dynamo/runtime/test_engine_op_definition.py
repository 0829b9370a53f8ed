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


def test_the_native_loader_does_not_import_the_engine_op():
    # _engine_op imports _native (to ask whether C++ provides the op); the reverse import would
    # make a cycle. _native may import only the runtime package, lazily.
    import ast
    from pathlib import Path

    from torch_tensorrt_rtx.runtime import _native

    tree = ast.parse(Path(_native.__file__).read_text(encoding="utf-8"))
    modules = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    modules |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    project = sorted(m for m in modules if m and m.startswith("torch_tensorrt_rtx"))
    assert project == ["torch_tensorrt_rtx.runtime"], project
