"""Upstream's custom engine cache (examples/dynamo/engine_caching_example.py's RAMEngineCache), only
the import changed: `custom_engine_cache=` a BaseEngineCache subclass. Its blobs are untrusted."""
from __future__ import annotations

import hashlib
from typing import Dict, Optional

import pytest
import torch

import torch_tensorrt_rtx as torch_tensorrt
from tests.py.dynamo.conftest import builds  # noqa: F401 (a fixture)
from tests.py.dynamo.test_engine_cache import cache_enabled  # noqa: F401 (a fixture)
from tests.py.dynamo.test_lazy_network import conversions  # noqa: F401 (a fixture)
from tests.py.upstream.test_upstream_snippets import MLP
from torch_tensorrt_rtx.dynamo._custom_engine_cache import unpack
from torch_tensorrt_rtx.dynamo._engine_cache import BaseEngineCache, EngineCacheWarning


class RAMEngineCache(BaseEngineCache):
    """The pattern of upstream's engine caching example: blobs kept in a dict by hash."""

    def __init__(self) -> None:
        self.engine_cache: Dict[str, bytes] = {}

    def save(self, hash: str, blob: bytes) -> None:
        self.engine_cache[hash] = blob

    def load(self, hash: str) -> Optional[bytes]:
        return self.engine_cache.get(hash)


def _compile(model, cache, **options):
    inputs = (torch.randn(4, 16),)
    exp_program = torch.export.export(model, inputs)
    return torch_tensorrt.dynamo.compile(exp_program, inputs, min_block_size=1,
                                         cache_built_engines=True, reuse_cached_engines=True,
                                         custom_engine_cache=cache, progress=False, **options)


def _engine_sha256s(compiled) -> list:
    return sorted(hashlib.sha256(bytes(r.engine)).hexdigest() for r in torch_tensorrt.engine_records(compiled).values())


def test_a_second_compile_loads_the_engine_from_the_users_cache(tmp_path, builds, conversions, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # the default cache directory must stay untouched
    model, cache = MLP().eval(), RAMEngineCache()
    first = _compile(model, cache, engine_cache_dir=str(tmp_path / "unused"))
    assert len(builds) == 1 and len(cache.engine_cache) == 1
    key, blob = next(iter(cache.engine_cache.items()))
    assert len(key) == 64 and isinstance(blob, bytes) and blob.startswith(b"TRTXENGC")
    conversions.clear()
    second = _compile(model, cache, engine_cache_dir=str(tmp_path / "unused"))
    assert len(builds) == 1, "the second compile built its engine instead of loading it"
    assert conversions == [] and second.compile_report.engine_cache_hits == 1
    assert not (tmp_path / "unused").exists()  # engine_cache_dir is not used with a custom cache
    assert _engine_sha256s(first) == _engine_sha256s(second) == [hashlib.sha256(unpack(blob, key).tobytes())
                                                                 .hexdigest()]


def _damaged(blob: bytes, key: str, how: str):
    if how == "garbage":
        return b"not an engine at all"
    if how == "flipped_engine_byte":
        return blob[:-1] + bytes([blob[-1] ^ 1])
    if how == "truncated":
        return blob[:len(blob) // 2]
    if how == "another_key":
        return BaseEngineCache.pack("0" * 64, unpack(blob, key).tobytes())
    return 12345  # not bytes at all


@pytest.mark.parametrize("how", ["garbage", "flipped_engine_byte", "truncated", "another_key", "not_bytes"])
def test_a_bad_blob_from_the_users_cache_is_a_warning_and_a_rebuild(builds, how):
    model, cache = MLP().eval(), RAMEngineCache()
    _compile(model, cache)
    key, good = next(iter(cache.engine_cache.items()))
    cache.engine_cache[key] = _damaged(good, key, how)
    with pytest.warns(EngineCacheWarning, match="ignoring what load"):
        rebuilt = _compile(model, cache)
    assert len(builds) == 2
    assert cache.engine_cache[key] == good  # saved again: nothing lost
    assert len(_engine_sha256s(rebuilt)) == 1


class FailingCache(RAMEngineCache):
    def load(self, hash):
        raise ConnectionError("store offline")

    def save(self, hash, blob):
        raise ConnectionError("store offline")


def test_a_users_cache_that_raises_costs_nothing_but_a_warning(builds):
    with pytest.warns(EngineCacheWarning, match="raised ConnectionError: store offline"):
        compiled = _compile(MLP().eval(), FailingCache())
    assert len(builds) == 1 and len(_engine_sha256s(compiled)) == 1


def test_custom_engine_cache_must_have_save_and_load():
    with pytest.raises(ValueError, match="custom_engine_cache must be .*BaseEngineCache.*got dict"):
        _compile(MLP().eval(), {})
    with pytest.raises(TypeError):
        BaseEngineCache()  # abstract, as upstream's


def test_pack_and_unpack_round_trip_and_get_hash_says_why_not():
    engine = bytes(range(256)) * 3
    blob = BaseEngineCache.pack("ab" * 32, engine)
    assert BaseEngineCache.unpack(blob, "ab" * 32) == engine
    with pytest.raises(ValueError, match="checksum"):
        BaseEngineCache.unpack(blob[:-1] + b"\0", "ab" * 32)
    with pytest.raises(NotImplementedError, match="computes an engine's key itself"):
        BaseEngineCache.get_hash(None, [], None)
