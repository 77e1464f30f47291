"""Speed of the JAX backbone against ONNX Runtime on the same weights, in one run; or, with
--photo, of a 12-megapixel phone photo from bytes to answer (float32 beside the served 1×1
products).

    python scripts/benchmark.py [--variant lite0|lite1|lite2] [--json] [--rounds 8]
    python scripts/benchmark.py --profile [--variant lite2] [--matmul bfloat16] [--rounds 3]
    python scripts/benchmark.py --photo [--photos ../shared/datasets/wiki-dogs-dev] [--json]

Needs the bench extra (pip install -e '.[bench]'). The backbone figures are per-photo latency
at batch 1 and photos per second at batch 32, JAX and ONNX Runtime taking turns round by round
(so that a busy moment of a shared machine falls on both alike), their ratios, the arithmetic
rate each reaches as a share of the CPU's peak, JAX with bfloat16 1×1 convolutions (taking
its own turns with ORT), the naive JAX formulation for comparison, and the
decode+preprocess time of a 12-megapixel JPEG. Both modes say how much of the CPUs other
processes used meanwhile. --profile prints where each engine spends its time instead: ms per
photo by layer kind, JAX's (float32 or --matmul bfloat16) beside ONNX Runtime's, the median of
--rounds rounds taking turns.
"""

import argparse
import functools
import io
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import jax
import numpy as np
from PIL import Image

from model import DEFAULT_VARIANT, MODELS
from model.advice import may_need_advice
from model.efficientnet import (
    VARIANTS,
    EfficientNetLite,
    fastest_matmul,
    from_pretrained,
    run_backbone,
    weights_path,
)
from model.evaluation.photo_speed import percentiles_ms, phone_photo, photo_to_answer
from model.predictor import Predictor
from model.preprocess import crop_and_resize, load_image, load_rgb, normalize
from model.torch_pickle import load_state_dict

try:
    import onnxruntime  # noqa: F401 (imported late by ort_session; checked here, up front)

    from model.evaluation.layer_profile import format_table, profile_backbone
    from model.evaluation.onnx_reference import ort_session
except ImportError as missing:
    sys.exit(f"error: the benchmark needs {missing.name} (the bench extra): "
             "pip install -e '.[bench]'")

# FP32 arithmetic per core and cycle: two 256-bit FMA pipes, 8 lanes × 2 operations each (AMD
# Zen 4, this machine's EPYC, runs AVX-512 as two 256-bit halves). Times the clock: 3.6 GHz
# measured with a chain of dependent adds on one core (README, Speed).
FLOPS_PER_CYCLE = 32
GHZ = 3.6
SHARED = Path("../shared/datasets")


class CpuShare:
    """How much of the machine's CPU time, between start and ``others()``, went to other
    processes (and to the hypervisor, as steal): /proc/stat less this process's own."""

    def __init__(self) -> None:
        self._start = self._read()

    @staticmethod
    def _read() -> tuple[int, int, int, float]:
        with open("/proc/stat") as stat:
            ticks = [int(n) for n in stat.readline().split()[1:]]
        own = os.times()
        return sum(ticks), ticks[3] + ticks[4], ticks[7], own.user + own.system

    def others(self) -> dict[str, float]:
        total, idle, steal, own = (b - a for a, b in zip(self._start, self._read(), strict=True))
        seconds = total / os.sysconf("SC_CLK_TCK")
        return {"others_cpu": max(0.0, (total - idle - steal) / total - own / seconds),
                "steal": steal / total}


def twelve_megapixel_jpeg() -> bytes:
    """A 4000×3000 JPEG with photo-like detail (smooth colour plus fine noise)."""
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    image = Image.fromarray(small).resize((4000, 3000), Image.Resampling.BICUBIC)
    noisy = np.asarray(image).astype(np.int16) + rng.integers(-12, 13, (3000, 4000, 3))
    buffer = io.BytesIO()
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def turns(runs: dict[str, Callable[[], object]], rounds: int, per_round: int
          ) -> tuple[dict[str, float], dict[str, float]]:
    """Median seconds of each run, and the CPU seconds (all threads) it used on average, the runs
    taking turns: ``rounds`` rounds of ``per_round`` each."""
    for run in runs.values():  # warm up
        run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    cpu = dict.fromkeys(runs, 0.0)
    for _ in range(rounds):
        for name, run in runs.items():
            before = time.process_time()  # all threads, finer than os.times' 10 ms ticks
            for _ in range(per_round):
                started = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - started)
            cpu[name] += (time.process_time() - before) / per_round
    return ({name: statistics.median(spent) for name, spent in times.items()},
            {name: spent / rounds for name, spent in cpu.items()})


def _contenders(variant: str, matmul: str = "float32") -> tuple[EfficientNetLite, Callable, dict,
                                                               np.ndarray]:
    """The model, its jitted logits, params, and 32 random photos."""
    model, params = from_pretrained(variant, matmul=matmul)
    size = model.resolution
    pixels = np.random.default_rng(0).integers(0, 256, (32, size, size, 3), dtype=np.uint8)
    return model, jax.jit(lambda p, x: run_backbone(model, p, x)[1]), params, pixels


def backbone(variant: str, rounds: int) -> dict:
    """Batch-1 and batch-32 timings of JAX, JAX with bfloat16 1×1 convolutions and ONNX
    Runtime, taking turns, and the naive JAX."""
    model, forward, params, pixels = _contenders(variant)
    _, bf16, bf16_params, _ = _contenders(variant, "bfloat16")
    flops = forward.lower(params, pixels[:1]).compile().cost_analysis()["flops"]
    session = ort_session(load_state_dict(weights_path(variant)), model, threads=os.cpu_count())
    inputs = normalize(pixels).transpose(0, 3, 1, 2)  # (B, 3, S, S)
    share = CpuShare()
    def with_ort(name: str, run: Callable, batch: int, per_round: int) -> tuple[dict, dict]:
        return turns({name: lambda: run(pixels[:batch]).block_until_ready(),
                      f"ort_{name}": lambda: session.run(["logits"], {"pixels": inputs[:batch]})},
                     rounds, per_round)

    # JAX and bfloat16 JAX each take turns with ORT alone: three-way, whoever follows ORT
    # pays for ORT's spinning pool (up to 1.5× the time of its own turn; README, Speed).
    b1, b1_cpu, b32, b32_cpu = {}, {}, {}, {}
    for name, run in (("jax", functools.partial(forward, params)),
                      ("bf16", functools.partial(bf16, bf16_params))):
        for times, cpu, batch, per_round in ((b1, b1_cpu, 1, 5), (b32, b32_cpu, 32, 1)):
            spent, used = with_ort(name, run, batch, per_round)
            times |= spent
            cpu |= used
    for measured in (b1, b1_cpu, b32, b32_cpu):
        measured["ort"] = measured["ort_jax"]
    others = share.others()
    naive_model = VARIANTS[variant](depthwise="grouped")  # on the same params
    naive = jax.jit(lambda p, x: naive_model.apply(p, x)[1])
    naive_b1, _ = turns({"naive": lambda: naive(params, pixels[:1]).block_until_ready()}, 3, 1)
    naive_b32, _ = turns({"naive": lambda: naive(params, pixels).block_until_ready()}, 2, 1)
    core = FLOPS_PER_CYCLE * GHZ * 1e9  # one core's peak FLOP/s
    peak = os.cpu_count() * core
    result = {
        "variant": variant, "cpus": os.cpu_count(),
        "jax_ms_b1": b1["jax"] * 1e3, "ort_ms_b1": b1["ort"] * 1e3,
        "jax_ips_b32": 32 / b32["jax"], "ort_ips_b32": 32 / b32["ort"],
        "ratio_b1": b1["jax"] / b1["ort"], "ratio_b32": b32["jax"] / b32["ort"],
        "jax_bf16_ms_b1": b1["bf16"] * 1e3, "jax_bf16_ips_b32": 32 / b32["bf16"],
        "ratio_bf16_b1": b1["bf16"] / b1["ort_bf16"],
        "ratio_bf16_b32": b32["bf16"] / b32["ort_bf16"],
        # CPU time per photo over ORT's in the same turns: what a busy machine distorts least.
        **{f"cpu_ratio_{name}_b{batch}": cpu[name] / cpu[f"ort_{name}"]
           for name in ("jax", "bf16") for batch, cpu in ((1, b1_cpu), (32, b32_cpu))},
        "naive_jax_ms_b1": naive_b1["naive"] * 1e3, "naive_jax_ips_b32": 32 / naive_b32["naive"],
        "gflop_per_photo": flops / 1e9, "peak_gflops": peak / 1e9,
        **{f"{engine}_peak_b1": flops / b1[engine] / peak for engine in ("jax", "ort")},
        **{f"{engine}_peak_b32": 32 * flops / b32[engine] / peak for engine in ("jax", "ort")},
        # The same per CPU-second the process was given: what a busy machine cannot distort
        # (but it counts a thread pool's spinning as work).
        **{f"{engine}_cpu_peak_b1": flops / b1_cpu[engine] / core for engine in ("jax", "ort")},
        **{f"{engine}_cpu_peak_b32": 32 * flops / b32_cpu[engine] / core
           for engine in ("jax", "ort")},
        **others,
    }
    jpeg = twelve_megapixel_jpeg()
    decode, _ = turns({"draft": lambda: load_image(jpeg, model.resolution),
                    "full": lambda: load_rgb(jpeg)}, 5, 2)
    return result | {"decode_12mp_ms": decode["draft"] * 1e3,
                     "full_decode_12mp_ms": decode["full"] * 1e3, "jpeg_mb": len(jpeg) / 1e6}


def print_backbone(r: dict) -> None:
    print(f"EfficientNet-{r['variant']}, {r['cpus']} CPUs, {r['gflop_per_photo']:.2f} GFLOP a "
          f"photo           batch 1 (ms/photo)   batch 32 (photos/s)")
    for name, key in (("JAX (shifted-sum depthwise)", "jax"), ("ONNX Runtime", "ort")):
        print(f"  {name:<31} {r[f'{key}_ms_b1']:10.2f} {r[f'{key}_ips_b32']:18.1f}"
              f"      share of peak: {r[f'{key}_peak_b1']:.0%} / {r[f'{key}_peak_b32']:.0%}"
              f" (per CPU-second: {r[f'{key}_cpu_peak_b1']:.0%} / {r[f'{key}_cpu_peak_b32']:.0%})")
    print(f"  JAX, bfloat16 1×1 convolutions  {r['jax_bf16_ms_b1']:10.2f}"
          f" {r['jax_bf16_ips_b32']:18.1f}")
    print(f"  JAX / ORT (time)                {r['ratio_b1']:10.2f}x {r['ratio_b32']:17.2f}x"
          f"      CPU time: {r['cpu_ratio_jax_b1']:.2f}x / {r['cpu_ratio_jax_b32']:.2f}x")
    print(f"  JAX bfloat16 / ORT (time)       {r['ratio_bf16_b1']:10.2f}x"
          f" {r['ratio_bf16_b32']:17.2f}x      CPU time: {r['cpu_ratio_bf16_b1']:.2f}x /"
          f" {r['cpu_ratio_bf16_b32']:.2f}x")
    print(f"  naive JAX (feature_group_count) {r['naive_jax_ms_b1']:10.2f}"
          f" {r['naive_jax_ips_b32']:18.1f}")
    print(f"peak {r['peak_gflops']:.0f} GFLOP/s ({r['cpus']} cores × {FLOPS_PER_CYCLE} FLOP/cycle"
          f" × {GHZ} GHz); other processes used {r['others_cpu']:.0%} of the CPUs meanwhile"
          f" (steal {r['steal']:.1%})")
    print(f"decode + preprocess of a 12-megapixel JPEG ({r['jpeg_mb']:.1f} MB): "
          f"{r['decode_12mp_ms']:.1f} ms (full-size decode alone: "
          f"{r['full_decode_12mp_ms']:.1f} ms)")


def profile(variant: str, matmul: str, rounds: int) -> dict:
    """Ms per photo by layer kind of JAX (``matmul`` 1×1 products) and ONNX Runtime."""
    model, forward, params, pixels = _contenders(variant, matmul)
    state = load_state_dict(weights_path(variant))
    session = functools.partial(ort_session, state, model, os.cpu_count())
    share = CpuShare()
    columns = profile_backbone(model, forward, params, session, pixels,
                               normalize(pixels).transpose(0, 3, 1, 2), rounds)
    return {"variant": variant, "matmul": matmul, "cpus": os.cpu_count(), "rounds": rounds,
            "ms_per_photo": columns, **share.others()}


def print_profile(r: dict) -> None:
    print(f"EfficientNet-{r['variant']}, {r['cpus']} CPUs, JAX with {r['matmul']} 1×1 products"
          f" beside ONNX Runtime: the median of {r['rounds']} rounds taking turns")
    print(format_table(r["ms_per_photo"]))
    print(f"other processes used {r['others_cpu']:.0%} of the CPUs meanwhile"
          f" (steal {r['steal']:.1%})")


def photo(variant: str, folder: Path, count: int, repeats: int) -> dict:
    """Photo-to-answer percentiles of each mirror policy, with float32 and the served 1×1
    products, over ``count`` photos of ``folder`` made 12-megapixel phone JPEGs."""
    paths = sorted(folder.rglob("*.jpg"))
    paths = paths[:: max(1, len(paths) // count)][:count]  # spread over the breeds
    photos = [phone_photo(path.read_bytes(), seed) for seed, path in enumerate(paths)]
    # The served products beside exact float32, where they differ (``Predictor``'s matmul).
    predictors = [Predictor(variant, matmul=m) for m in dict.fromkeys(("float32",
                                                                       fastest_matmul()))]
    predictor = predictors[-1]  # as served
    share = CpuShare()
    times = photo_to_answer(predictors, photos, repeats)
    served = np.stack(predictor.decode(photos))  # decoded once for the two answers below
    mirrored = sum(map(may_need_advice, predictor.classify_pixels(served, "never")))
    # Does decoding at a reduced DCT scale change answers? The same photos decoded full size.
    full = predictor.classify_pixels(np.stack([crop_and_resize(load_rgb(p), predictor.resolution)
                                               for p in photos]))
    wnids = [path.parent.name.split("-")[0] for path in paths]  # Images/<wnid>-<Name>/

    def right(answers: list) -> int:
        return sum(a.predictions[0].label == w for a, w in zip(answers, wnids, strict=True))

    return {"variant": variant, "cpus": os.cpu_count(), "photos": len(photos),
            "top1_draft": right(predictor.classify_pixels(served)),
            "top1_full_decode": right(full),
            "repeats": repeats, "jpeg_mb": sum(map(len, photos)) / len(photos) / 1e6,
            "mirrored_when_unsure": mirrored / len(photos),
            "ways": {name: percentiles_ms(seconds) for name, seconds in times.items()},
            **share.others()}


def print_photo(r: dict, folder: Path) -> None:
    print(f"photo to answer, EfficientNet-{r['variant']}, {r['cpus']} CPUs: {r['photos']} photos"
          f" of {folder} as 12-megapixel phone JPEGs ({r['jpeg_mb']:.1f} MB on average),"
          f" {r['repeats']} times each")
    print("  way, mirror image (1×1 products)     p50     p95     p99   fastest (ms)")
    for name, p in r["ways"].items():
        print(f"  {name:<31} {p['p50']:8.1f} {p['p95']:7.1f} {p['p99']:7.1f} {p['fastest']:9.1f}")
    print(f"top-1: {r['top1_draft']} of {r['photos']} decoded as served (reduced DCT scale),"
          f" {r['top1_full_decode']} decoded full size")
    print(f"\"unsure\" mirrored {r['mirrored_when_unsure']:.0%} of the photos; other processes"
          f" used {r['others_cpu']:.0%} of the CPUs meanwhile (steal {r['steal']:.1%})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", default=DEFAULT_VARIANT, choices=MODELS)
    parser.add_argument("--rounds", type=int, default=8, help="turns JAX and ORT take")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--photo", action="store_true", help="time photo to answer instead")
    parser.add_argument("--profile", action="store_true",
                        help="ms per photo by layer kind instead (--rounds: 3 is plenty)")
    parser.add_argument("--matmul", choices=("float32", "bfloat16"), default="float32",
                        help="JAX's 1×1 convolution products for --profile")
    parser.add_argument("--photos", type=Path, default=SHARED / "wiki-dogs-dev",
                        help="folder of dog photos for --photo")
    parser.add_argument("--count", type=int, default=40, help="photos for --photo")
    args = parser.parse_args()
    if args.photo and not args.photos.is_dir():
        parser.error(f"no folder {args.photos} (--photos)")
    if args.photo:
        result = photo(args.variant, args.photos, args.count, repeats=3)
    elif args.profile:
        result = profile(args.variant, args.matmul, args.rounds)
    else:
        result = backbone(args.variant, args.rounds)
    if args.json:
        print(json.dumps(jax.tree.map(lambda v: round(v, 4) if isinstance(v, float) else v,
                                      result)))
    elif args.photo:
        print_photo(result, args.photos)
    elif args.profile:
        print_profile(result)
    else:
        print_backbone(result)


if __name__ == "__main__":
    main()
