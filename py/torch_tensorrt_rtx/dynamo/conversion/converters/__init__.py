"""Converter modules, one per op family. Importing this package registers them all.

To extend coverage, add a module here and list it below.
"""
from torch_tensorrt_rtx.dynamo.conversion.converters import (  # noqa: F401
    activation,
    attention,
    cast,
    comparison,
    constants,
    conv,
    elementwise,
    indexing,
    linear,
    normalization,
    padding,
    pool,
    reduction,
    remainder,
    resize,
    shape,
    symbolic,
    topk,
    unary,
)
