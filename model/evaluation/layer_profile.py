"""Where JAX and ONNX Runtime spend their time on the backbone: ms per photo by layer kind.

JAX: a ``jax.profiler`` trace of the compiled model, whose XLA:CPU thunks are named after HLO
instructions; each instruction's ``op_name`` metadata (and that of the computation a fusion
calls) says which Flax module it came from. ONNX Runtime: its own per-node profile
(``SessionOptions.enable_profiling``), whose node names are the torch layer names the graph
in ``onnx_reference`` keeps. Both are grouped into the same kinds (``KINDS``). Benchmark use
only (needs the ``bench`` extra); ``scripts/benchmark.py --profile`` prints the table.
"""

from __future__ import annotations

import collections
import glob
import gzip
import json
import re
import statistics
import tempfile
import time
from collections.abc import Callable

import jax
import numpy as np

from model.efficientnet import EfficientNetLite

OTHER = "other (layout, copies)"
KINDS = ("stem", "depthwise k3 s1", "depthwise k3 s2", "depthwise k5 s1", "depthwise k5 s2",
         "1×1 expand", "1×1 project (+ residual)", "head 1×1", "pool + classifier", OTHER)
# Which part of a layer a name points at, most specific first: a fusion of a 1×1 product's
# ReLU6 with the next depthwise layer's padding counts as depthwise.
_JAX_PARTS = (("depthwise", "depthwise"), ("stem", "stem"), ("expand", "expand"),
              ("project", "project"), ("head", "head"), ("classifier", "pool"),
              ("pool", "pool"))
_ONNX_PARTS = {"_bn0": "expand", "_bn1": "depthwise", "_bn2": "project", "out": "project"}
_CONTAINERS = {"while", "call", "conditional"}  # thunks that run other thunks


def _kind(model: EfficientNetLite, block: int | None, part: str) -> str:
    if part == "depthwise" and block is not None:
        spec = model.blocks[block]
        return f"depthwise k{spec.kernel} s{spec.stride}"
    return {"stem": "stem", "expand": "1×1 expand", "project": "1×1 project (+ residual)",
            "head": "head 1×1", "pool": "pool + classifier"}.get(part, OTHER)


def _jax_kind(model: EfficientNetLite, op_names: list[str]) -> str:
    for needle, part in _JAX_PARTS:
        for name in op_names:
            if f"/{needle}" in name or f".{needle}" in name:
                block = re.search(r"/block(\d+)/", name)
                return _kind(model, int(block[1]) if block else None, part)
    return OTHER


def hlo_kinds(model: EfficientNetLite, hlo_text: str) -> dict[str, str | None]:
    """Each instruction of a compiled module's text -> its kind (None: a container thunk)."""
    computations: dict[str, list[str]] = {}
    instructions: dict[str, tuple[str, str | None, list[str]]] = {}
    current: list[str] = []
    for line in hlo_text.splitlines():
        header = re.match(r"(?:ENTRY )?%?([\w.\-]+) \(", line)
        if header and not line.startswith(" "):
            current = computations.setdefault(header[1], [])
            continue
        inst = re.match(r"\s+(?:ROOT )?%?([\w.\-]+) = \S+ ([\w\-]+)\(", line)
        if not inst:
            continue
        names = re.findall(r'op_name="([^"]*)"', line)
        current.extend(names)
        called = re.search(r"calls=%?([\w.\-]+)", line)
        instructions[inst[1]] = (inst[2], called[1] if called else None, names)
    return {name: None if opcode in _CONTAINERS
            else _jax_kind(model, names + computations.get(called or "", []))
            for name, (opcode, called, names) in instructions.items()}


def jax_profile(model: EfficientNetLite, forward: Callable, args: tuple, runs: int
                ) -> dict[str, float]:
    """Milliseconds a call of the jitted ``forward(*args)`` spends in each kind (the mean of
    ``runs`` traced calls, after one untraced), plus "total" (the sum) and "wall"."""
    kinds = hlo_kinds(model, forward.lower(*args).compile().as_text())
    jax.block_until_ready(forward(*args))
    with tempfile.TemporaryDirectory() as folder:
        jax.profiler.start_trace(folder, create_perfetto_trace=True)
        wall = _timed_runs(lambda: jax.block_until_ready(forward(*args)), runs)
        jax.profiler.stop_trace()
        (trace,) = glob.glob(f"{folder}/plugins/profile/*/*.trace.json.gz")
        with gzip.open(trace) as file:
            events = json.load(file)["traceEvents"]
    spent: dict[str, float] = collections.defaultdict(float)
    for event in events:
        kind = kinds.get(event.get("name", "")) if event.get("ph") == "X" else None
        if kind:
            spent[kind] += event["dur"] / 1e3 / runs
    return _with_totals(spent, wall)


def _timed_runs(run: Callable[[], object], runs: int) -> float:
    """Mean wall-clock milliseconds of ``runs`` calls."""
    started = time.perf_counter()
    for _ in range(runs):
        run()
    return (time.perf_counter() - started) * 1e3 / runs


def _with_totals(spent: dict[str, float], wall: float) -> dict[str, float]:
    return {kind: spent.get(kind, 0.0) for kind in KINDS} | {"total": sum(spent.values()),
                                                             "wall": wall}


def _onnx_kind(model: EfficientNetLite, node: str) -> str:
    """Kind of an ORT profile's node name: ``_blocks.3._bn1.relu6_nchwc`` (block 3's
    depthwise conv, BatchNorm and ReLU6 fused), ``_bn0...`` (stem), ``pooled``."""
    block = re.match(r"_blocks\.(\d+)\.(_bn\d|out)", node)
    if block:
        return _kind(model, int(block[1]), _ONNX_PARTS[block[2]])
    top = {"_bn0": "stem", "_bn1": "head", "pooled": "pool", "features": "pool",
           "logits": "pool"}
    return _kind(model, None, next((part for prefix, part in top.items()
                                    if node.startswith(prefix)), "other"))


def ort_profile(model: EfficientNetLite, make_session: Callable, inputs: np.ndarray,
                runs: int) -> dict[str, float]:
    """Milliseconds a ``session.run`` on ``inputs`` spends in each kind, as ``jax_profile``;
    ``make_session(options)`` makes the session from profiling-enabled options."""
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as folder:
        options = ort.SessionOptions()
        options.enable_profiling = True
        options.profile_file_prefix = f"{folder}/ort"
        session = make_session(options)
        session.run(["logits"], {"pixels": inputs})
        wall = _timed_runs(lambda: session.run(["logits"], {"pixels": inputs}), runs)
        with open(session.end_profiling()) as file:
            events = json.load(file)
    run_starts = sorted(e["ts"] for e in events if e["name"] == "model_run")
    first_timed = run_starts[-runs]  # the untraced first run is still in ORT's profile
    spent: dict[str, float] = collections.defaultdict(float)
    for event in events:
        if event["cat"] == "Node" and event["ts"] >= first_timed:
            spent[_onnx_kind(model, event["name"])] += event["dur"] / 1e3 / runs
    return _with_totals(spent, wall)


def profile_backbone(model: EfficientNetLite, forward: Callable, params: dict,
                     session: Callable, pixels: np.ndarray, inputs: np.ndarray,
                     rounds: int = 3) -> dict[str, dict[str, float]]:
    """Columns "JAX b1", "ORT b1", "JAX b32", "ORT b32" (batch sizes 1 and len(pixels)) of ms
    per photo by kind: the median over ``rounds`` rounds in which the engines take turns.
    ``forward(params, pixels)`` is jitted; ``session(options)`` makes an ORT session."""
    columns: dict[str, list[dict[str, float]]] = collections.defaultdict(list)
    for batch in (1, len(pixels)):
        runs = max(1, 10 // batch)
        for _ in range(rounds):
            columns[f"JAX b{batch}"].append(jax_profile(model, forward, (params, pixels[:batch]),
                                                        runs))
            columns[f"ORT b{batch}"].append(ort_profile(model, session, inputs[:batch], runs))
    return {name: {kind: statistics.median(r[kind] for r in results) / int(name.split("b")[1])
                   for kind in results[0]} for name, results in columns.items()}


def format_table(columns: dict[str, dict[str, float]]) -> str:
    """``profile_backbone``'s columns as a table, with JAX's time over ORT's per batch size."""
    batches = [name.split()[1] for name in columns if name.startswith("JAX")]
    header = "".join(f"{name:>9}" for name in columns) + "".join(
        f"{'JAX/ORT ' + b:>13}" for b in batches)
    lines = [f"{'ms per photo':<26}{header}"]
    for kind in (*KINDS, "total", "wall"):
        label = {"total": "sum of the above", "wall": "wall clock of a call"}.get(kind, kind)
        ratios = "".join(f"{_ratio(columns[f'JAX {b}'][kind], columns[f'ORT {b}'][kind]):>13}"
                         for b in batches)
        lines.append(f"{label:<26}" + "".join(f"{spent[kind]:9.2f}"
                                               for spent in columns.values()) + ratios)
    return "\n".join(lines)


def _ratio(jax_ms: float, ort_ms: float) -> str:
    return f"{jax_ms / ort_ms:.2f}x" if ort_ms > 0.005 else "-"
