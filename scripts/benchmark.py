"""Speed of the JAX backbone against ONNX Runtime on the same weights, in one run.

    python scripts/benchmark.py [--variant lite0|lite1|lite2] [--json]

Needs the bench extra (pip install -e '.[bench]'). Prints per-photo latency at batch 1,
photos per second at batch 32, their ratios, the naive JAX formulation for comparison, and
the decode+preprocess time of a 12-megapixel JPEG.
"""

import argparse
import io
import json
import os
import statistics
import sys
import time
from collections.abc import Callable

import jax
import numpy as np
from PIL import Image

from model import DEFAULT_VARIANT, MODELS
from model.efficientnet import VARIANTS, from_pretrained, run_backbone, weights_path
from model.preprocess import load_image, normalize
from model.torch_pickle import load_state_dict

try:
    import onnxruntime  # noqa: F401 (imported late by ort_session; checked here, up front)

    from model.evaluation.onnx_reference import ort_session
except ImportError as missing:
    sys.exit(f"error: the benchmark needs {missing.name} (the bench extra): "
             "pip install -e '.[bench]'")


def median_seconds(run: Callable[[], object], repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def twelve_megapixel_jpeg() -> bytes:
    """A 4000×3000 JPEG with photo-like detail (smooth colour plus fine noise)."""
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    image = Image.fromarray(small).resize((4000, 3000), Image.Resampling.BICUBIC)
    noisy = np.asarray(image).astype(np.int16) + rng.integers(-12, 13, (3000, 4000, 3))
    buffer = io.BytesIO()
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def jax_timings(depthwise: str, variant: str, pixels: np.ndarray, repeats: int) -> dict:
    model, params = from_pretrained(variant, depthwise=depthwise)
    forward = jax.jit(lambda p, x: run_backbone(model, p, x)[1] if depthwise == "shifted"
                      else model.apply(p, x)[1])
    b1 = median_seconds(lambda: forward(params, pixels[:1]).block_until_ready(), repeats)
    b32 = median_seconds(lambda: forward(params, pixels).block_until_ready(), max(repeats // 8, 2))
    return {"ms_b1": b1 * 1e3, "ips_b32": len(pixels) / b32}


def ort_timings(variant: str, pixels: np.ndarray, repeats: int) -> dict:
    model, _ = from_pretrained(variant)
    session = ort_session(load_state_dict(weights_path(variant)), model, threads=os.cpu_count())
    inputs = normalize(pixels).transpose(0, 3, 1, 2)  # (B, 3, S, S)
    b1 = median_seconds(lambda: session.run(["logits"], {"pixels": inputs[:1]}), repeats)
    b32 = median_seconds(lambda: session.run(["logits"], {"pixels": inputs}), max(repeats // 8, 2))
    return {"ms_b1": b1 * 1e3, "ips_b32": len(pixels) / b32}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", default=DEFAULT_VARIANT, choices=MODELS)
    parser.add_argument("--repeats", type=int, default=40, help="timed runs at batch 1")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    size = VARIANTS[args.variant]().resolution
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (32, size, size, 3), dtype=np.uint8)

    fast = jax_timings("shifted", args.variant, pixels, args.repeats)
    naive = jax_timings("grouped", args.variant, pixels, max(args.repeats // 8, 3))
    ort = ort_timings(args.variant, pixels, args.repeats)
    jpeg = twelve_megapixel_jpeg()
    decode = median_seconds(lambda: load_image(jpeg, size), 10)
    result = {
        "variant": args.variant, "cpus": os.cpu_count(),
        "jax_ms_b1": fast["ms_b1"], "ort_ms_b1": ort["ms_b1"],
        "jax_ips_b32": fast["ips_b32"], "ort_ips_b32": ort["ips_b32"],
        "ratio_b1": fast["ms_b1"] / ort["ms_b1"], "ratio_b32": ort["ips_b32"] / fast["ips_b32"],
        "naive_jax_ms_b1": naive["ms_b1"], "naive_jax_ips_b32": naive["ips_b32"],
        "decode_12mp_ms": decode * 1e3, "jpeg_mb": len(jpeg) / 1e6,
    }
    if args.json:
        print(json.dumps({k: round(v, 3) if isinstance(v, float) else v
                          for k, v in result.items()}))
        return
    r = result
    print(f"EfficientNet-{args.variant}, {r['cpus']} CPUs"
          f"                     batch 1 (ms/photo)   batch 32 (photos/s)")
    print(f"  JAX (shifted-sum depthwise)     {r['jax_ms_b1']:10.2f} {r['jax_ips_b32']:18.1f}")
    print(f"  ONNX Runtime                    {r['ort_ms_b1']:10.2f} {r['ort_ips_b32']:18.1f}")
    print(f"  JAX / ORT (slowdown)            {r['ratio_b1']:10.2f}x {r['ratio_b32']:17.2f}x")
    print(f"  naive JAX (feature_group_count) {r['naive_jax_ms_b1']:10.2f}"
          f" {r['naive_jax_ips_b32']:18.1f}")
    print(f"decode + preprocess of a 12-megapixel JPEG ({r['jpeg_mb']:.1f} MB):"
          f" {r['decode_12mp_ms']:.1f} ms")


if __name__ == "__main__":
    main()
