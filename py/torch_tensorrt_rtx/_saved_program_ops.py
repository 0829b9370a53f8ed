"""What ``import torch_tensorrt_rtx`` does for saved programs: register the engine op.

A ``.pt2`` written by ``torch_tensorrt_rtx.save`` calls ``torch.ops.tensorrt_rtx.execute_engine``.
``torch.export.load`` and ``torch._inductor.aoti_load_package`` resolve that name while loading,
so it must exist before either runs. Registering it needs torch, and importing torch costs
seconds, which tools that only touch the runtime cache file must not pay. So:

- torch already imported (``import torch, torch_tensorrt_rtx``): the op is registered now;
- otherwise: it is registered right after torch's own import finishes, through a one-shot
  import hook on the name ``torch`` that removes itself on first use.

Registration loads the C++ runtime when it is installed (``torch.ops.tensorrt.*``,
``torch.classes.tensorrt.Engine``) and otherwise registers the Python kernel. It never raises
into an import: a failure is logged and ``torch_tensorrt_rtx.runtime._native.status()`` says why.
"""
from __future__ import annotations

import importlib.util
import logging
import sys

logger = logging.getLogger(__name__)


def register_saved_program_ops() -> None:
    """Registers ``tensorrt_rtx::execute_engine`` (and loads the C++ runtime if present). Idempotent:
    the registration runs once, as the import of ``_engine_op``, which Python runs once."""
    try:
        from torch_tensorrt_rtx.dynamo import _engine_op  # noqa: F401  (registers on import)
    except Exception as exc:  # noqa: BLE001 - importing torch must never fail because of us
        logger.warning("torch_tensorrt_rtx could not register its engine op (%s: %s); saved programs will "
                       "not load until `import torch_tensorrt_rtx.dynamo._engine_op` succeeds",
                       type(exc).__name__, exc)


class AfterImport:
    """A meta path finder (not derived from importlib.abc, whose import costs more than this whole
    package's) that finds nothing itself: on the first import of module `fullname` it wraps that
    module's loader so that `callback()` runs once the module has run, then leaves ``sys.meta_path``."""

    def __init__(self, fullname: str, callback) -> None:
        self.fullname = fullname
        self.callback = callback

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.fullname:
            return None
        self.remove()
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run_module = spec.loader.exec_module
        callback = self.callback

        def exec_module(module):
            run_module(module)
            callback()

        spec.loader.exec_module = exec_module
        return spec

    def remove(self) -> None:
        try:
            sys.meta_path.remove(self)
        except ValueError:
            pass

    def run_now_or_after_import(self) -> None:
        if self.fullname in sys.modules:
            self.callback()
        elif self not in sys.meta_path:
            sys.meta_path.insert(0, self)


_HOOK = AfterImport("torch", register_saved_program_ops)


def register_now_or_after_torch_import() -> None:
    _HOOK.run_now_or_after_import()
