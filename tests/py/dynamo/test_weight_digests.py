"""Weight digests hashed on worker threads (dynamo/_weight_digests.py): always the digest of the
tensor's bytes at the time the key asks, whatever happened to it since it was submitted."""
from __future__ import annotations

import torch

from torch_tensorrt_rtx.dynamo._engine_cache import start_weight_digests
from torch_tensorrt_rtx.dynamo._engine_cache_key import tensor_digest
from torch_tensorrt_rtx.dynamo._settings import CompilationSettings
from torch_tensorrt_rtx.dynamo._weight_digests import WeightDigests


def _tensors():
    torch.manual_seed(0)
    big = torch.randn(512, 1024)
    return [big, big.t(), big[::2], torch.randn(3, 5).half(), torch.zeros(0, 4), torch.arange(7),
            torch.tensor(2.5)]


def test_digests_are_the_keys_tensor_digests():
    tensors = _tensors()
    digests = WeightDigests()
    digests.submit(tensors)
    assert [digests.digest(t) for t in tensors] == [tensor_digest(t) for t in tensors]
    late = torch.ones(4)  # never submitted: hashed when asked
    assert digests.digest(late) == tensor_digest(late)
    digests.close()
    assert digests.digest(tensors[0]) == tensor_digest(tensors[0])


def test_a_tensor_changed_in_place_after_submission_is_hashed_again():
    weight = torch.randn(256, 1024)
    digests = WeightDigests()
    digests.submit([weight])
    before = digests.digest(weight)  # hashed, and remembered
    weight.mul_(2.0)  # bumps the version counter
    assert digests.digest(weight) == tensor_digest(weight) != before


def test_a_tensor_given_other_memory_after_submission_is_hashed_again():
    weight = torch.nn.Parameter(torch.randn(64, 64))
    digests = WeightDigests()
    digests.submit([weight])
    first = digests.digest(weight)
    weight.data = torch.randn(64, 64)  # same object, new storage (no version bump)
    assert digests.digest(weight) == tensor_digest(weight) != first


def test_weights_are_hashed_ahead_only_when_the_cache_is_on(monkeypatch):
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.BatchNorm1d(8))
    monkeypatch.delenv("TORCH_TENSORRT_RTX_ENGINE_CACHE", raising=False)
    digests = start_weight_digests(model, CompilationSettings())
    assert digests is not None
    assert all(digests.digest(t) == tensor_digest(t) for t in list(model.parameters()) + list(model.buffers()))
    off = CompilationSettings(cache_built_engines=False, reuse_cached_engines=False)
    assert start_weight_digests(model, off) is None
    monkeypatch.setenv("TORCH_TENSORRT_RTX_ENGINE_CACHE", "0")
    assert start_weight_digests(model, CompilationSettings()) is None
