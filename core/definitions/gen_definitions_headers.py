"""Generates the C++ headers of the facts both runtimes share.

Usage (Bazel genrule, scripts/windows_test.sh):
    gen_definitions_headers.py DEFINITIONS_PY DEFINITIONS_TOML LAYOUT_H STRATEGIES_H PROTOCOL_H ENGINE_OP_H

DEFINITIONS_PY is py/torch_tensorrt_rtx/runtime/definitions.py, which reads and checks
DEFINITIONS_TOML (definitions.toml beside it) with the standard library; Python uses the
same module. This script only changes the spelling into C++.
"""
import importlib.util
import sys
from pathlib import Path


def load_definitions(path):
    spec = importlib.util.spec_from_file_location("ttrx_definitions", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def c_string(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def camel(snake):
    return "".join(word.capitalize() for word in snake.split("_"))


def wrap(guard, table, body, namespace="runtime", includes=("<cstddef>",)):
    return "\n".join([
        f"// Generated from [{table}] in py/torch_tensorrt_rtx/runtime/definitions.toml by",
        "// core/definitions/gen_definitions_headers.py. Do not edit: edit that file.",
        f"#ifndef {guard}",
        f"#define {guard}",
        "",
        *[f"#include {header}" for header in includes],
        "",
        "namespace torch_tensorrt_rtx {",
        f"namespace {namespace} {{",
        "",
        *body,
        "",
        f"}}  // namespace {namespace}",
        "}  // namespace torch_tensorrt_rtx",
        "",
        f"#endif  // {guard}",
        "",
    ])


def field_table(fields):
    return [
        "enum Field : std::size_t {",
        *[f"  {name} = {i}," for i, name in enumerate(fields)],
        "};",
        f"constexpr std::size_t kNumFields = {len(fields)};",
        "constexpr const char* kFieldNames[kNumFields] = {",
        *[f"    {c_string(name)}," for name in fields],
        "};",
    ]


def layout_header(layout):
    body = [
        "namespace layout {",
        "",
        f"constexpr int kAbiVersion = {layout.abi_version};",
        f"constexpr const char* kAbiVersionText = {c_string(str(layout.abi_version))};",
        f"constexpr char kPackMagic[{len(layout.pack_magic)}] = "
        + "{" + ", ".join(f"'{chr(b)}'" for b in layout.pack_magic) + "};",
        f"constexpr const char* kPackMagicText = {c_string(layout.pack_magic.decode('ascii'))};",
        f"constexpr const char* kSeparator = {c_string(layout.separator)};",
        f"constexpr const char* kSentinel = {c_string(layout.sentinel)};",
        f"constexpr const char* kPortable = {c_string(layout.portable)};",
        "",
        "// Index of each field in the record list.",
        *field_table(layout.fields),
        "",
        "// The previous ABI version, still decoded (fields of the same name carry over).",
        "namespace previous {",
        f"constexpr int kAbiVersion = {layout.previous_abi_version};",
        f"constexpr const char* kAbiVersionText = {c_string(str(layout.previous_abi_version))};",
        *field_table(layout.previous_fields),
        "}  // namespace previous",
        "",
        "}  // namespace layout",
    ]
    return wrap("TORCH_TENSORRT_RTX_CORE_DEFINITIONS_ENGINE_RECORD_LAYOUT_H_", "engine_record", body)


def strategies_header(strategies):
    body = []
    for strategy in strategies.values():
        enum = camel(strategy.setting)
        members = ", ".join("k" + camel(name) for name in strategy.names)
        names = ", ".join(c_string(name) for name in strategy.names)
        body += [
            f"// {strategy.setting}: tensorrt_rtx {strategy.trt_enum}; the first member is the default.",
            f"enum class {enum} {{ {members} }};",
            f"constexpr const char* k{enum}Names[] = {{{names}}};",
            f"constexpr const char* k{enum}Setting = {c_string(strategy.setting)};",
            "",
        ]
    settings = list(strategies.values())
    body += [
        "// Every strategy setting, each at its default (the first name).",
        "struct StrategySettings {",
        *[f"  {camel(s.setting)} {s.setting} = static_cast<{camel(s.setting)}>(0);" for s in settings],
        "};",
        "",
        "// Per-engine strategy overrides: unset members follow the scope.",
        "struct StrategyOverrides {",
        *[f"  std::optional<{camel(s.setting)}> {s.setting};" for s in settings],
        "};",
        "",
        "// Calls visit(setting, names, number of names, member) for each strategy member of `s`",
        "// (a StrategySettings or StrategyOverrides), in definition order.",
        "template <typename S, typename Visit>",
        "void ForEachStrategy(S& s, Visit&& visit) {",
        *[f"  visit(k{camel(x.setting)}Setting, k{camel(x.setting)}Names, std::size_t{{{len(x.names)}}}, s.{x.setting});"
          for x in settings],
        "}",
    ]
    return wrap("TORCH_TENSORRT_RTX_CORE_DEFINITIONS_RUNTIME_STRATEGIES_H_", "strategies", body,
                includes=("<cstddef>", "<optional>"))


def cache_protocol_header(protocol):
    body = [
        "// The lock file of the cache at P is P + kLockFileSuffix.",
        f"constexpr const char* kLockFileSuffix = {c_string(protocol.lock_suffix)};",
        f"constexpr std::chrono::milliseconds kDefaultLockTimeout{{{protocol.lock_timeout_ms}}};",
        f"constexpr std::chrono::milliseconds kLockPollInterval{{{protocol.lock_poll_interval_ms}}};",
        "// The per-user default cache: $XDG_CACHE_HOME or ~/.cache, then these two names.",
        f"constexpr const char* kDefaultCacheDir = {c_string(protocol.default_cache_dir)};",
        f"constexpr const char* kDefaultCacheFile = {c_string(protocol.default_cache_file)};",
        "// Temp files of a save: \"<cache name>\" kTempMarker \"<random>\".",
        f"constexpr const char* kTempMarker = {c_string(protocol.temp_marker)};",
        "// The cache container (layout: definitions.toml, [cache_protocol]).",
        f"constexpr const char* kContainerMagic = {c_string(protocol.container_magic)};",
        f"constexpr std::uint32_t kContainerVersion = {protocol.container_version};",
        f"constexpr std::uint32_t kOldestContainerVersion = {protocol.oldest_container_version};",
        f"constexpr std::uint32_t kMaxEntries = {protocol.max_entries_count};",
        f"constexpr std::uint64_t kDefaultMaxBytes = {protocol.default_max_bytes}ULL;",
        f"constexpr const char* kMaxBytesEnv = {c_string(protocol.max_bytes_env)};",
        f"constexpr std::int64_t kTouchIntervalSeconds = {protocol.touch_interval_s};",
    ]
    return wrap("TORCH_TENSORRT_RTX_CORE_DEFINITIONS_CACHE_PROTOCOL_H_", "cache_protocol", body,
                namespace="protocol", includes=("<chrono>", "<cstdint>"))


def engine_op_header(op):
    body = [
        "// The engine op saved programs call: registered natively by the runtime library.",
        f"constexpr const char* kEngineOpNamespace = {c_string(op.namespace)};",
        f"constexpr const char* kEngineOpName = {c_string(op.qualified_name)};",
        f"constexpr const char* kEngineOpSchema = {c_string(op.schema)};",
    ]
    return wrap("TORCH_TENSORRT_RTX_CORE_DEFINITIONS_ENGINE_OP_H_", "engine_op", body,
                namespace="definitions", includes=())


def main(definitions_py, definitions_toml, layout_out, strategies_out, protocol_out, engine_op_out):
    definitions = load_definitions(definitions_py).load(Path(definitions_toml))
    outputs = {
        layout_out: layout_header(definitions.layout),
        strategies_out: strategies_header(definitions.strategies),
        protocol_out: cache_protocol_header(definitions.cache_protocol),
        engine_op_out: engine_op_header(definitions.engine_op),
    }
    for path, text in outputs.items():
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)


if __name__ == "__main__":
    if len(sys.argv) != 7:
        sys.exit(f"usage: {sys.argv[0]} DEFINITIONS_PY DEFINITIONS_TOML LAYOUT_H STRATEGIES_H PROTOCOL_H "
                 f"ENGINE_OP_H (found {len(sys.argv) - 1} arguments)")
    main(*sys.argv[1:])
