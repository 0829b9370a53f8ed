"""The shared definitions: one TOML file, read with tomllib, checked, used by the record and the
settings. The C++ side generates its headers from the same module (tests/core and
test_cross_runtime check those values)."""
import copy
import tomllib

import pytest

from torch_tensorrt_rtx import runtime
from torch_tensorrt_rtx.runtime import definitions
from torch_tensorrt_rtx.runtime.definitions import DEFINITIONS_FILE, DefinitionError, definitions_from

RAW = tomllib.loads(DEFINITIONS_FILE.read_text(encoding="utf-8"))


def test_constants_are_the_file_as_tomllib_reads_it():
    record = RAW["engine_record"]
    assert definitions.LAYOUT.fields == tuple(name for name, _ in record["fields"])
    assert definitions.LAYOUT.pack_magic == record["pack_magic"].encode("ascii")
    assert {s: (v["trt_enum"], tuple(v["names"])) for s, v in RAW["strategies"].items()} == {
        s: (v.trt_enum, v.names) for s, v in definitions.STRATEGIES.items()}
    assert definitions.CACHE_PROTOCOL._asdict() == RAW["cache_protocol"]
    assert definitions.ENGINE_OP._asdict() == RAW["engine_op"]
    assert definitions.load() == (definitions.LAYOUT, definitions.STRATEGIES,
                                  definitions.CACHE_PROTOCOL, definitions.ENGINE_OP)


def test_settings_use_the_strategy_names_and_their_first_as_default():
    assert (runtime.KERNEL_STRATEGIES, runtime.CUDA_GRAPH_STRATEGIES, runtime.ALLOCATION_STRATEGIES) == (
        ("lazy", "eager", "none"), ("disabled", "whole_graph_capture"),
        ("static", "on_profile_change", "user_managed"))
    defaults = runtime.RuntimeSettings()
    for setting, entry in RAW["strategies"].items():
        assert getattr(defaults, setting) == entry["names"][0]
    with pytest.raises(ValueError, match="expected one of 'lazy', 'eager', 'none'"):
        runtime.RuntimeSettings(kernel_strategy="fast")


def test_packed_records_open_with_the_files_magic():
    packed = runtime.EngineRecord.new(b"x", name="n", input_names=["a"], output_names=["b"]).pack()
    assert bytes(packed[:8]) == RAW["engine_record"]["pack_magic"].encode("ascii") == b"TRXREC01"


def test_cache_store_uses_the_protocol_values():
    from torch_tensorrt_rtx.runtime import runtime_cache_file as store

    protocol = RAW["cache_protocol"]
    assert (store.LOCK_SUFFIX, store.DEFAULT_LOCK_TIMEOUT_S, store.LOCK_POLL_INTERVAL_S) == (".lock", 10.0, 0.05)
    assert store.DEFAULT_LOCK_TIMEOUT_S * 1000 == protocol["lock_timeout_ms"]
    assert store.default_cache_path(create_dir=False).parts[-2:] == (protocol["default_cache_dir"],
                                                                     protocol["default_cache_file"])


def _changed(path, value):
    """The real file's data with the value at ``path`` (keys) replaced, or removed if None."""
    data = copy.deepcopy(RAW)
    *parents, last = path
    table = data
    for key in parents:
        table = table[key]
    if value is None:
        del table[last]
    else:
        table[last] = value
    return data


@pytest.mark.parametrize("path, value, message", [
    (("engine_record", "pack_magic"), "SHORT", r"engine_record\.pack_magic: expected 8 ASCII bytes, found 'SHORT'"),
    (("engine_record", "abi_version"), "1", r"engine_record\.abi_version: expected a non-empty integer, found '1'"),
    (("engine_record", "abi_version"), True, "expected a non-empty integer, found True"),
    (("engine_record", "sentinel"), None, r"missing keys \['sentinel'\]"),
    (("engine_record", "bogus"), 2, r"unknown keys \['bogus'\]"),
    (("engine_record", "fields"), [], "expected a non-empty array"),
    (("engine_record", "fields"), [["ABI_VERSION", "a"], ["ENGINE", "b"], ["ENGINE", "c"]], "distinct"),
    (("engine_record", "fields"), [["NAME", "a"], ["ENGINE", "b"]], "must both open with ABI_VERSION"),
    (("engine_record", "fields"), [["ABI_VERSION", "a"], ["NAME", "b"]], "must both hold ENGINE"),
    (("engine_record", "previous_abi_version"), 2, "previous_abi_version: expected less than abi_version 2"),
    (("engine_record", "previous_fields"), ["NAME"], "must both open with ABI_VERSION"),
    (("engine_record", "fields"), [["ABI_VERSION"], ["ENGINE", "b"]], r"\[NAME, description\] pairs"),
    (("strategies",), {}, r"strategies: expected a non-empty table, found \{\}"),
    (("strategies", "kernel_strategy", "names"), ["lazy", "lazy"], "distinct identifiers"),
    (("strategies", "kernel_strategy", "trt_enum"), None, r"strategies\.kernel_strategy: .*missing keys \['trt_enum'\]"),
    (("cache_protocol", "lock_timeout_ms"), "ten", r"lock_timeout_ms: expected a non-empty integer, found 'ten'"),
    (("cache_protocol", "lock_suffix"), "", r"lock_suffix: expected a non-empty string, found ''"),
    (("cache_protocol", "container_magic"), "LONGMAGIC", "container_magic: expected 8 ASCII bytes"),
    (("engine_op", "namespace"), "a b", "identifier namespace"),
    (("engine_op", "schema"), "f(Tensor x)", r"NAME\(ARGS\) -> RETURNS"),
    (("engine_ops",), {}, r"unknown keys \['engine_ops'\]"),
])
def test_bad_definitions_are_rejected_naming_the_key_and_value(path, value, message):
    with pytest.raises(DefinitionError, match=message):
        definitions_from(_changed(path, value))


def test_invalid_toml_is_rejected_naming_the_file(tmp_path):
    bad = tmp_path / "definitions.toml"
    bad.write_text("[engine_record\n")
    with pytest.raises(DefinitionError, match=f"{bad}: not valid TOML"):
        definitions.load(bad)
