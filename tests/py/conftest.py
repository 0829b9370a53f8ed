"""Settings for the whole Python suite.

scripts/test.sh runs pytest with pytest-xdist on both CPUs (-n 2). torch sizes its intra-op
thread pool to the machine's cores in every process, so two workers would run four compute
threads on two cores: under xdist each worker keeps one (TTRX_TEST_THREADS_PER_WORKER=N sets
another count, 0 keeps torch's default). A run without -n is left alone."""
from __future__ import annotations

import os

import torch

if os.environ.get("PYTEST_XDIST_WORKER"):
    _threads = int(os.environ.get("TTRX_TEST_THREADS_PER_WORKER", "1"))
    if _threads > 0:
        torch.set_num_threads(_threads)
