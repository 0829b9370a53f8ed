"""Which zoo model a test builds, from its node id alone: what pytest-xdist's scheduler sees
(tests/py/conftest.py sends all tests of one model to one worker, so the model is built once)."""
from __future__ import annotations

import re
from typing import Optional

from tests.py.models.zoo import ALL_MODELS

# Tests that use one zoo model by name (zoo.case), besides the matrix parametrized by model.
USES_MODEL = {
    "test_models.py::test_torch_compile_dynamic_bert_with_attention_mask": "bert",
    "test_outputs_and_saving.py::test_save_t5_encoder_with_pytorch_partitions_and_keyword_inputs": "t5_encoder",
}
_MATRIX_ID = re.compile(r"test_models\.py::\w+\[(?P<name>\w+)-fp(?:32|16)\]$")


def model_group(nodeid: str) -> Optional[str]:
    """The zoo model a test builds, from its node id (what xdist's scheduler sees), or None."""
    nodeid = nodeid.replace("\\", "/")
    if "tests/py/models/" not in nodeid:
        return None
    tail = nodeid.rsplit("/", 1)[-1]
    match = _MATRIX_ID.match(tail)
    name = match.group("name") if match else USES_MODEL.get(tail)
    return name if name in ALL_MODELS else None
