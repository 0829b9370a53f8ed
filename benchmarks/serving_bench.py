"""Benchmark (not a test): per-call cost of the engine op in saved programs, and memory after
deleting programs.

With the C++ runtime loaded (the scripted-backend build of its op registrations, so no
TensorRT: the "engine" doubles a small CPU tensor), in one process:
  - ttrx_test.noop                      a no-op custom op: the dispatcher's floor
  - the engine op's C++ kernel          tensorrt_rtx.execute_engine redispatched to its kernel's key
  - tensorrt_rtx.execute_engine         the op saved graphs call, called directly
  - tensorrt.execute_engine(Engine)     the torch.classes.tensorrt.Engine path
  - loaded .pt2 program                 trtx.load(...).module()(x), graph = just the engine call,
                                        against torch.export.load(...).module()(x) (torch's wrapper)
  - AOTInductor package                 aoti_load_package(...)(x) (with --aoti; ~40 s to build)
and, from C++ without the dispatcher, the scripted backend's own time and ExecuteEngine's.
The Python runtime (TRTModule on the tensorrt_rtx test double, Python-registered op) runs
in a child process. Memory: RSS after loading, running and deleting programs whose engines
hold 8 MB each, on both runtimes.

Needs: bazel build //tests/core/runtime:libscripted_runtime_ops.so
Run:   .venv/bin/python benchmarks/serving_bench.py [--calls N] [--repeats R] [--aoti]
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests" / "py" / "dynamo" / "runtime"
# Another checkout's build (e.g. a worktree without its own bazel-bin) is named by SCRIPTED_RUNTIME_OPS.
SCRIPTED_OPS = Path(os.environ.get("SCRIPTED_RUNTIME_OPS")
                    or REPO / "bazel-bin" / "tests" / "core" / "runtime" / "libscripted_runtime_ops.so")
PAD = 8 << 20  # engine bytes per program in the memory measurement


def best_us(fn, calls: int, repeats: int) -> float:
    """Per-call time, best of `repeats` runs of `calls` calls: the machine is shared, and the
    best run is the one least disturbed by other processes."""
    fn()  # warm-up: the first call builds the engine and its context
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter() - start) / calls * 1e6)
    return min(samples)


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class EngineOnly:
    """A program whose graph is just the engine call (built lazily: torch imported later)."""

    @staticmethod
    def build(record):
        import torch

        from engine_programs import SPEC

        class M(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.register_buffer("blk0_engine", record.to_tensor().clone())

            def forward(self, x):
                return torch.ops.tensorrt_rtx.execute_engine([x], self.blk0_engine, SPEC)[0]

        return M()


class NoopGraph:
    """forward(x) = ttrx_test.noop([x])[0], to be fx-traced (torch imported later)."""

    def __new__(cls):
        import torch

        class M(torch.nn.Module):
            def forward(self, x):
                return torch.ops.ttrx_test.noop([x])[0]

        return M()


def save_program(record, path: str, output_format: str = "exported_program") -> None:
    import torch_tensorrt_rtx as trtx

    trtx.save(EngineOnly.build(record), path, output_format=output_format,
              inputs=[trtx.Input(min_shape=(1, 4), opt_shape=(2, 4), max_shape=(8, 4))])


def memory(record_for, tmp: str, count: int = 8, cycles: int = 3) -> dict:
    """RSS (MB) before, and per cycle with `count` loaded programs that ran once and after
    deleting them. Freed memory may stay in the allocator's arenas, so the check is that it
    does not grow from cycle to cycle."""
    import torch

    import torch_tensorrt_rtx as trtx

    path = os.path.join(tmp, "mem.pt2")
    save_program(record_for(PAD), path)
    x = torch.ones(2, 4)
    gc.collect()
    out = {"before": rss_mb(), "loaded": [], "deleted": [], "count": count}
    for _ in range(cycles):
        programs = [trtx.load(path).module() for _ in range(count)]
        for p in programs:
            p(x)
        out["loaded"].append(rss_mb())
        del programs, p
        gc.collect()
        out["deleted"].append(rss_mb())
    return out


def saved_and_loaded(record, tmp: str):
    """Save a one-engine program around `record` in `tmp` and load it back: (the loaded program,
    its module, torch's module of the same file, its graph module, the graph's buffer arguments)."""
    import torch

    import torch_tensorrt_rtx as trtx

    save_program(record, tmp + "/p.pt2")
    loaded = trtx.load(tmp + "/p.pt2")
    state = [loaded.state_dict[n] for n in loaded.graph_signature.buffers]
    return loaded, loaded.module(), torch.export.load(tmp + "/p.pt2").module(), loaded.graph_module, state


def time_loaded(out: dict, op, loaded, program, torch_module, graph, state, x, calls: int, repeats: int) -> None:
    """The direct op and the ways to call the loaded program, interleaved: each repeat times every
    path once in turn, so load drifting on a shared machine hits them alike; best per path."""
    paths = {"loaded_op": op, "saved_program": lambda: graph(*state, x), "saved_module": lambda: torch_module(x),
             "loaded_module": lambda: program(x), "loaded_program": lambda: loaded(x)}
    for fn in paths.values():
        fn()  # warm-up
    samples = {name: [] for name in paths}
    for _ in range(repeats):
        for name, fn in paths.items():
            samples[name].append(best_us(fn, calls, 1))
    out.update({name: min(values) for name, values in samples.items()})


def native(args) -> dict:
    import torch

    from engine_programs import SPEC, scripted_record
    from torch_tensorrt_rtx.dynamo import _engine_op

    assert _engine_op.NATIVE, "the scripted op library did not register the engine op"
    calls, repeats = args.calls, args.repeats
    x = torch.ones(2, 4)
    record = scripted_record()
    packed = record.to_tensor().clone()
    engine = torch.classes.tensorrt.Engine(record.to_list())
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        loaded, program, torch_module, graph, state = saved_and_loaded(record, tmp)
        op = torch.ops.tensorrt_rtx.execute_engine.default
        out["noop"] = best_us(lambda: torch.ops.ttrx_test.noop([x]), calls, repeats)
        kernel_keys = torch._C.DispatchKeySet(torch._C.DispatchKey.CompositeExplicitAutograd)
        out["record_engine_op"] = best_us(lambda: op.redispatch(kernel_keys, [x], packed, SPEC), calls, repeats)
        out["engine_op"] = best_us(lambda: op([x], packed, SPEC), calls, repeats)
        out["engine_class_op"] = best_us(lambda: torch.ops.tensorrt.execute_engine([x], engine), calls, repeats)
        time_loaded(out, lambda: op([x], packed, SPEC), loaded, program, torch_module, graph, state, x, calls, repeats)
        # The same graph shape around the no-op: what torch.fx itself costs per call.
        noop_graph = torch.fx.symbolic_trace(NoopGraph())
        out["noop_graph"] = best_us(lambda: noop_graph(x), calls, repeats)
        if args.aoti:
            save_program(record, tmp + "/aoti.pt2", "aot_inductor")
            runner = torch._inductor.aoti_load_package(tmp + "/aoti.pt2")
            out["aoti_package"] = best_us(lambda: runner(x), calls, repeats)
            del runner
        out["backend_only"], out["execute_engine_cpp"] = torch.ops.ttrx_test.scripted_backend_us(x, calls)
        del program, torch_module, loaded, graph, state, engine
        gc.collect()
        out["memory"] = memory(lambda pad: scripted_record().__class__.new(
            b"SCRIPTED-ENGINE v1\ninput x\noutput y\n" + b" " * pad, name="blk0",
            input_names=["x"], output_names=["y"]), tmp)
        out["memory"]["live_engines_after_delete"] = list(torch.ops.ttrx_test.scripted_stats())[0] - 1  # `packed`
    return out


def python_runtime(args) -> dict:
    import torch

    from engine_programs import SPEC, double_record
    from torch_tensorrt_rtx import runtime
    from torch_tensorrt_rtx.dynamo import _engine_op
    from trt_double import TrtDouble, make_engine_bytes, stand_in_gpu

    assert not _engine_op.NATIVE
    api = TrtDouble()
    stand_in_gpu()  # the double's device: TRTModule's GPU checks run against it
    _engine_op._new_python_module = lambda record, name: runtime.TRTModule(record, name, trt_api=api)
    calls, repeats = max(args.calls // 10, 200), args.repeats
    x = torch.ones(2, 4)
    record = double_record()
    packed = record.to_tensor().clone()
    module = runtime.TRTModule(record, trt_api=api)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        loaded, program, torch_module, graph, state = saved_and_loaded(record, tmp)
        out["trt_module"] = best_us(lambda: module(x), calls, repeats)
        out["engine_op"] = best_us(lambda: torch.ops.tensorrt_rtx.execute_engine([x], packed, SPEC), calls, repeats)
        time_loaded(out, lambda: torch.ops.tensorrt_rtx.execute_engine([x], packed, SPEC), loaded, program, torch_module,
                    graph, state, x, calls, repeats)
        del program, torch_module, loaded, graph, state
        engine = make_engine_bytes({"x": ((1, 4), (2, 4), (8, 4))}, ["y"])
        out["memory"] = memory(lambda pad: runtime.EngineRecord.new(
            engine + b" " * pad, name="blk0", input_names=["x"], output_names=["y"]), tmp)
    return out


def child(kind: str, args) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "py"), str(TESTS)]),
               TORCH_TENSORRT_RTX_RUNTIME_LIBRARY=str(SCRIPTED_OPS) if kind == "native" else "")
    cmd = [sys.executable, __file__, "--child", kind, "--calls", str(args.calls), "--repeats", str(args.repeats)]
    cmd += ["--aoti"] if args.aoti else []
    result = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise SystemExit(f"{kind} child failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def report(cpp: dict, py: dict, args) -> None:
    noop, op = cpp["noop"], cpp["engine_op"]
    print(f"per call, best of {args.repeats} x {args.calls} calls (C++ runtime, scripted backend, CPU tensor [2, 4])")
    rows = [("ttrx_test.noop (dispatcher floor)", noop),
            ("fx graph around ttrx_test.noop", cpp["noop_graph"]),
            ("engine op's C++ kernel (redispatched)", cpp["record_engine_op"]),
            ("tensorrt_rtx.execute_engine (op direct)", op),
            ("tensorrt.execute_engine(Engine) (class path)", cpp["engine_class_op"]),
            ("op direct, timed interleaved with the rows below", cpp["loaded_op"]),
            ("loaded .pt2: its graph (engine call only)", cpp["saved_program"]),
            ("torch.export.load(p).module() (torch's wrapper)", cpp["saved_module"]),
            ("trtx.load(p).module()", cpp["loaded_module"]),
            ("trtx.load(p) called directly", cpp["loaded_program"])]
    if "aoti_package" in cpp:
        rows.append(("AOTInductor package from Python", cpp["aoti_package"]))
    for name, us in rows:
        print(f"  {name:46s} {us:8.2f} us   {us / noop:5.2f}x noop   {us / op:5.2f}x op")
    print(f"  interleaved, over the op: trtx.load(p).module() {cpp['loaded_module'] / cpp['loaded_op']:.2f}x "
          f"(target <= 2x), torch's .module() {cpp['saved_module'] / cpp['loaded_op']:.2f}x, the saved graph "
          f"{cpp['saved_program'] / cpp['loaded_op']:.2f}x")
    print(f"  saved program over the direct op: {cpp['saved_program'] - cpp['loaded_op']:+.2f} us (target <= 2 us); "
          f"torch.fx's own graph call around a no-op adds {cpp['noop_graph'] - noop:+.2f} us")
    print(f"  op over no-op: {op - noop:.2f} us, of which the scripted backend itself spends "
          f"{cpp['backend_only']:.2f} us and ExecuteEngine (binding, output allocation, backend; no "
          f"dispatcher) {cpp['execute_engine_cpp']:.2f} us")
    print("Python runtime (TRTModule on the tensorrt_rtx test double; op registered by Python)")
    for name, key in (("TRTModule(x)", "trt_module"), ("tensorrt_rtx.execute_engine (op direct)", "engine_op"),
                      ("loaded .pt2: its graph", "saved_program"),
                      ("torch.export.load(p).module()", "saved_module"), ("trtx.load(p).module()", "loaded_module")):
        print(f"  {name:46s} {py[key]:8.2f} us   {py[key] / cpp[key if key != 'trt_module' else 'engine_op']:5.2f}x C++")
    print(f"  interleaved, over the op: trtx.load(p).module() {py['loaded_module'] / py['loaded_op']:.2f}x, torch's "
          f".module() {py['saved_module'] / py['loaded_op']:.2f}x")
    for label, m in (("C++ runtime", cpp["memory"]), ("Python runtime", py["memory"])):
        cycles = ", ".join(f"{a:.0f} -> {b:.0f}" for a, b in zip(m["loaded"], m["deleted"]))
        print(f"memory, {label}: {m['count']} programs x {PAD >> 20} MB engine, 3 cycles of load+run -> delete: "
              f"RSS {m['before']:.0f} MB before; {cycles} MB"
              + (f"; scripted engines alive after: {m['live_engines_after_delete']}" if "live_engines_after_delete" in m else ""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--aoti", action="store_true", help="also build and time an AOTInductor package")
    parser.add_argument("--child", choices=["native", "python"])
    args = parser.parse_args()
    if args.child:
        print(json.dumps(native(args) if args.child == "native" else python_runtime(args)))
        return 0
    if not SCRIPTED_OPS.is_file():
        print(f"missing {SCRIPTED_OPS}: bazel build //tests/core/runtime:libscripted_runtime_ops.so")
        return 2
    report(child("native", args), child("python", args), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
