"""Settings for the whole Python suite under pytest-xdist (scripts/test.sh: -n 2 --dist loadgroup).

- Scheduling: every test of one acceptance model (tests/py/models/groups.py) is one work unit,
  so one worker builds the model; xdist sends the largest units first, so the models start
  while the one-test units of the rest fill in. (xdist_group marks would do this, but xdist
  3.8.0 applies them by renaming `item._nodeid`, which pytest 9.2 no longer reads.)
- Threads: torch sizes its intra-op pool to the machine's cores in every process, so two
  workers would run four compute threads on two cores: each worker keeps one
  (TTRX_TEST_THREADS_PER_WORKER=N sets another count, 0 keeps torch's default).
- The engine cache is off ($TORCH_TENSORRT_RTX_ENGINE_CACHE=0) unless a test enables it.
A run without -n is left alone."""
from __future__ import annotations

import os

import pytest
import torch

# Hermetic: no test writes the engine cache into ~/.cache, and no test that counts builds finds
# an engine another test stored. Tests of the cache enable it explicitly (test_engine_cache.py).
# Set before anything runs, so subprocesses the tests start inherit it.
os.environ["TORCH_TENSORRT_RTX_ENGINE_CACHE"] = "0"

if os.environ.get("PYTEST_XDIST_WORKER"):
    _threads = int(os.environ.get("TTRX_TEST_THREADS_PER_WORKER", "1"))
    if _threads > 0:
        torch.set_num_threads(_threads)


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist: fine without it installed
def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    from tests.py.models.groups import model_group

    class ModelGroupScheduling(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            group = model_group(nodeid)
            return f"model:{group}" if group is not None else super()._split_scope(nodeid)

    return ModelGroupScheduling(config, log)
