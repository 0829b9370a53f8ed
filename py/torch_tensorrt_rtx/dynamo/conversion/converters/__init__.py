"""Converter modules, one per op family. Importing this package registers them all.

To extend coverage, add a module here and list it below.
"""
from torch_tensorrt_rtx.dynamo.conversion.converters import (  # noqa: F401
    activation,
    cast,
    conv,
    elementwise,
    linear,
    normalization,
    pool,
    reduction,
    shape,
)
from torch_tensorrt_rtx.dynamo.conversion.converters import (  # noqa: F401  (coverage: issue 4)
    attention, comparison, constants, indexing, layer_norm, padding, reduce_ops, remainder, resize, symbolic, unary,
)
