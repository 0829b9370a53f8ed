"""The engine op's name and schema are defined once (engine_op.txt) and are what torch has
registered, whichever runtime registered it."""
import pytest
import torch

from torch_tensorrt_rtx.dynamo import _engine_op
from torch_tensorrt_rtx.runtime.definitions import ENGINE_OP, ENGINE_OP_FILE, DefinitionError, parse_engine_op


def test_registered_schema_is_the_defined_one():
    schema = str(torch.ops.tensorrt_rtx.execute_engine.default._schema)
    assert schema == f"{ENGINE_OP.namespace}::{ENGINE_OP.schema}"
    assert _engine_op.OP_NAME == ENGINE_OP.qualified_name == "tensorrt_rtx::execute_engine"


def test_the_file_is_the_only_definition():
    text = ENGINE_OP_FILE.read_text()
    assert f"schema {ENGINE_OP.schema}" in text and f"namespace {ENGINE_OP.namespace}" in text


@pytest.mark.parametrize("text, message", [
    ("", "missing namespace, schema"),
    ("namespace a\n", "missing schema"),
    ("namespace a\nschema f(Tensor x) -> Tensor\nschema g() -> ()\n", "repeated entry 'schema'"),
    ("namespace a b\nschema f(Tensor x) -> Tensor\n", "identifier namespace"),
    ("namespace a\nschema f(Tensor x)\n", "NAME\\(ARGS\\) -> RETURNS"),
    ("nmespace a\n", "unknown"),
])
def test_bad_definitions_are_rejected(text, message):
    with pytest.raises(DefinitionError, match=message):
        parse_engine_op(text)
