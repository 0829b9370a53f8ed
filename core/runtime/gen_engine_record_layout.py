"""Generates engine_record_layout.h from py/torch_tensorrt_rtx/runtime/engine_record_layout.txt.

Usage (Bazel genrule): gen_engine_record_layout.py LAYOUT_TXT OUT_H
The layout file is the single definition; this script only changes its spelling.
"""
import sys


def parse(path):
    abi, sep, sentinel, fields = None, None, None, []
    with open(path, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            key, _, rest = line.partition(" ")
            rest = rest.strip()
            if key == "abi_version":
                abi = int(rest)
            elif key == "separator":
                sep = rest
            elif key == "sentinel":
                sentinel = rest
            elif key == "field":
                name = rest.split()[0]
                if name in fields:
                    sys.exit(f"{path}:{lineno}: duplicate field {name}")
                fields.append(name)
            else:
                sys.exit(f"{path}:{lineno}: unknown directive {key!r}")
    if abi is None or not sep or not sentinel or not fields:
        sys.exit(f"{path}: needs abi_version, separator, sentinel and fields")
    for required in ("ABI_VERSION", "ENGINE"):
        if required not in fields:
            sys.exit(f"{path}: missing required field {required}")
    return abi, sep, sentinel, fields


def c_string(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def main(src, out):
    abi, sep, sentinel, fields = parse(src)
    lines = [
        "// Generated from py/torch_tensorrt_rtx/runtime/engine_record_layout.txt by",
        "// core/runtime/gen_engine_record_layout.py. Do not edit: edit the layout file.",
        "#ifndef TORCH_TENSORRT_RTX_CORE_RUNTIME_ENGINE_RECORD_LAYOUT_H_",
        "#define TORCH_TENSORRT_RTX_CORE_RUNTIME_ENGINE_RECORD_LAYOUT_H_",
        "",
        "#include <cstddef>",
        "",
        "namespace torch_tensorrt_rtx {",
        "namespace runtime {",
        "namespace layout {",
        "",
        f"constexpr int kAbiVersion = {abi};",
        f"constexpr const char* kAbiVersionText = {c_string(str(abi))};",
        f"constexpr const char* kSeparator = {c_string(sep)};",
        f"constexpr const char* kSentinel = {c_string(sentinel)};",
        "",
        "// Index of each field in the record list.",
        "enum Field : std::size_t {",
    ]
    lines += [f"  {name} = {i}," for i, name in enumerate(fields)]
    lines += [
        "};",
        "",
        f"constexpr std::size_t kNumFields = {len(fields)};",
        "constexpr const char* kFieldNames[kNumFields] = {",
    ]
    lines += [f"    {c_string(name)}," for name in fields]
    lines += [
        "};",
        "",
        "}  // namespace layout",
        "}  // namespace runtime",
        "}  // namespace torch_tensorrt_rtx",
        "",
        "#endif  // TORCH_TENSORRT_RTX_CORE_RUNTIME_ENGINE_RECORD_LAYOUT_H_",
        "",
    ]
    with open(out, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
