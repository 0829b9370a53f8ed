"""The acceptance run's Markdown report: every figure, the machine, and what was not run."""
from __future__ import annotations

import math
from typing import Any, Optional

DRY_BANNER = ("> **DRY RUN.** Every step ran, but against the test doubles on the CPU: engine "
              "execution is a `TRTModule` over the tensorrt_rtx test double, errors come from the "
              "CPU reference executor, and `torch.compile` is replaced by eager. **No figure below "
              "measures TensorRT-RTX or verifies anything on an RTX GPU.**")


def _num(value: Optional[float], fmt: str = "{:.3f}") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return fmt.format(value)


def _ratio(a: Optional[float], b: Optional[float]) -> str:
    return "—" if not a or not b else f"{a / b:.2f}x"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


def render(data: dict[str, Any]) -> str:
    dry, machine, tests = data["dry_run"], data["machine"], data["rtx_gpu_tests"]
    out = [f"# torch_tensorrt_rtx acceptance report{' (DRY RUN)' if dry else ''}", ""]
    if dry:
        out += [DRY_BANNER, ""]
    out += [f"Started {data['started']}, took {data['seconds']:.1f} s. Verdict: **{data['verdict']}**.", "",
            "## Machine", ""]
    out += _table(["item", "value"], [[k, str(v)] for k, v in machine.items()])

    out += ["", "## `rtx_gpu` tests", "",
            f"`{' '.join(tests.get('files', [])) or 'no files'}` -m rtx_gpu: **{tests['summary']}** "
            f"(exit code {tests['returncode']}, {tests['seconds']:.1f} s; log `{tests['log']}`)."]
    for reason in tests.get("skip_reasons", []):
        out.append(f"- skipped: {reason}")
    out += ["", "### Does `IRuntimeCache.deserialize` merge or replace?", ""]
    out += [f"- {line}" for line in tests["probe"]] or [
        "Not answered: no rtx_gpu test printed a line naming `IRuntimeCache.deserialize` with "
        "merge/replace (the probe did not run or did not pass)."]

    fams = data["families"]
    out += ["", "## Model families: accuracy and latency", "",
            "Latency: median ms per call (min in brackets), same process, same inputs. Errors: max abs "
            "difference from eager PyTorch (fp32)."
            + (" Dry run: error from the CPU reference executor; TensorRT-RTX latency is the test double."
               if dry else ""), ""]
    rows = []
    for f in fams:
        if "latency" not in f:
            continue
        lat = f["latency"]
        e, i, t = (lat[k]["median_ms"] if k in lat else None for k in ("eager", "inductor", "tensorrt_rtx"))

        def cell(key: str) -> str:
            return f"{lat[key]['median_ms']:.3f} ({lat[key]['min_ms']:.3f})" if key in lat else "failed"

        rows.append([f["family"], str(f.get("engines", "—")), _num(f.get("compile_s"), "{:.1f}"),
                     _num(f["max_abs_error"], "{:.2e}"), _num(f.get("inductor_max_abs_error"), "{:.2e}"),
                     cell("eager"), cell("inductor"), cell("tensorrt_rtx"), _ratio(e, t), _ratio(i, t)])
    out += _table(["family", "engines", "compile s", "max err TRT-RTX", "max err inductor", "eager ms",
                   "inductor ms", "TRT-RTX ms", "speedup vs eager", "vs inductor"], rows)

    out += ["", "## Time to first inference (fresh process each)", "",
            "cold: no cache file; warm: the file the cold process left; disabled: "
            "`runtime.settings(cache_path=None)`. Seconds; load = `trtx.load` + move to device.", ""]
    rows = []
    for f in fams:
        if "ttfi" not in f:
            continue
        t = f["ttfi"]
        rows.append([f["family"]] + [f"{_num(t[m]['first_inference_s'])} (load {_num(t[m]['load_s'])})"
                                     for m in ("cold", "warm", "disabled")]
                    + [_ratio(t["cold"]["first_inference_s"], t["warm"]["first_inference_s"]),
                       str(t["warm"].get("cache_bytes_before")), str(t["disabled"].get("cache_bytes_after"))])
    out += _table(["family", "cold s", "warm s", "disabled s", "cold / warm", "cache bytes (warm start)",
                   "cache bytes after disabled"], rows)
    for f in fams:
        if f.get("ttfi", {}).get("disabled", {}).get("default_cache_written"):
            out.append(f"\n**{f['family']}: the cache-disabled run wrote the default cache file "
                       f"({f['ttfi']['disabled']['default_cache']}): `cache_path=None` did not disable the cache.**")

    out += ["", "## Runtime strategies", "", "First call after switching (s; includes context recreation "
            "and any JIT) and steady median ms.", ""]
    labels = list(dict.fromkeys(k for f in fams for k in f.get("strategies", {})))
    rows = []
    for f in fams:
        s = f.get("strategies")
        if not s:
            continue
        rows.append([f["family"]] + [s[k]["error"] if "error" in s.get(k, {}) else
                                     f"{_num(s[k]['first_call_s'])} / {s[k]['median_ms']:.3f}"
                                     if k in s else "—" for k in labels])
    out += _table(["family"] + labels, rows)

    failures = [f for f in fams if "error" in f]
    out += ["", "## Failures", ""]
    if not failures and not data.get("problems") and not any("inductor_error" in f for f in fams):
        out.append("None.")
    for f in failures:
        out += [f"### {f['family']}: {f['error']}", "", "```", f.get("traceback", "").rstrip(), "```", ""]
    out += [f"- {p}" for p in data.get("problems", [])]
    out += [f"- {f['family']}: torch.compile (inductor) failed, so no inductor figure: {f['inductor_error']}"
            for f in fams if "inductor_error" in f]
    return "\n".join(out) + "\n"
