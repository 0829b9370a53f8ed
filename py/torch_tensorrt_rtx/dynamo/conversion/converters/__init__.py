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
    grid_sample,
    indexing,
    instance_norm,
    linear,
    log_exp,
    normalization,
    padding,
    pool,
    reduction,
    remainder,
    reorder,
    resize,
    shape,
    symbolic,
    topk,
    unary,
)
