"""Tests for model.efficientnet: architecture, weight mapping, depthwise forms, and numerics.

Numerics are checked two ways: against an independent ONNX Runtime graph built from the same
state_dict (model.evaluation.onnx_reference), and against values recorded in tests/data/
(regenerate them with ``.venv/bin/python -m tests.test_efficientnet --record``, only for a
deliberate change).
"""

from __future__ import annotations

import functools
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import model.efficientnet
from model.efficientnet import (
    VARIANTS,
    EfficientNetLite,
    depthwise_conv,
    fastest_matmul,
    from_pretrained,
    grouped_depthwise_conv,
    lite_blocks,
    params_from_state_dict,
    patch_conv,
    run_backbone,
    served_matmul,
    weights_path,
)
from model.preprocess import load_image, normalize
from model.torch_pickle import load_state_dict

RECORDED = Path(__file__).parent / "data" / "lite0_features.json"
RESOLUTIONS = {"lite0": 224, "lite1": 240, "lite2": 260}
# Photos under ../shared/datasets compared with the ONNX reference.
PHOTOS = (
    "imagenet-dogs-121/n02085620-Chihuahua.jpg",
    "imagenet-dogs-121/n02110958-pug.jpg",
    "dogs-dev/Images/n02099601-golden_retriever/n02099601_10.jpg",
    "dogs-dev/Images/n02111889-Samoyed/n02111889_1.jpg",
)

Pretrained = tuple[EfficientNetLite, dict]


@pytest.fixture(scope="module")
def pretrained() -> Callable[[str], Pretrained]:
    """Each variant's backbone and params, loaded at most once in this module."""
    return functools.cache(from_pretrained)


@pytest.fixture(scope="module")
def forward(pretrained: Callable[[str], Pretrained]) -> Callable[[str, np.ndarray], tuple]:
    """Jitted (features, logits) of a variant for (B, S, S, 3) uint8 pixels, as numpy."""

    @functools.cache
    def jitted(variant: str) -> Callable:
        model, params = pretrained(variant)
        return jax.jit(functools.partial(model.apply, params))

    def run(variant: str, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        features, logits = jitted(variant)(jnp.asarray(pixels))
        return np.asarray(features), np.asarray(logits)

    return run


@pytest.fixture(scope="module")
def lite0_state() -> dict[str, np.ndarray]:
    return load_state_dict(weights_path("lite0"))


def pixels_of(read_photo: Callable[[str], bytes], photos: tuple[str, ...] | list[str],
              size: int) -> np.ndarray:
    return np.stack([load_image(read_photo(p), size) for p in photos])


# --- architecture and weight mapping ------------------------------------------------------


@pytest.mark.parametrize(("width", "depth", "count"),
                         [(1.0, 1.0, 16), (1.0, 1.1, 21), (1.1, 1.2, 21)])
def test_lite_blocks(width: float, depth: float, count: int) -> None:
    blocks = lite_blocks(width, depth)
    assert len(blocks) == count
    assert blocks[0].in_features == 32  # the stem is not scaled in Lite
    for before, after in zip(blocks, blocks[1:], strict=False):
        assert after.in_features == before.out_features
    assert sum(b.stride == 2 for b in blocks) == 4  # with the stem: 32x downsampling


@pytest.mark.parametrize("variant", ["lite0", "lite1", "lite2"])
def test_from_pretrained(pretrained: Callable[[str], Pretrained], variant: str) -> None:
    model, params = pretrained(variant)  # params_from_state_dict checks every shape
    size = RESOLUTIONS[variant]
    assert model.resolution == size
    assert len(model.blocks) == (16 if variant == "lite0" else 21)
    leaves = jax.tree_util.tree_leaves(params)
    assert all(leaf.dtype == jnp.float32 and np.isfinite(leaf).all() for leaf in leaves)
    features, logits = jax.eval_shape(model.apply, params, jnp.zeros((2, size, size, 3), jnp.uint8))
    assert (features.shape, logits.shape) == ((2, 1280), (2, 1000))


def test_from_pretrained_refuses_unknown_variants() -> None:
    for variant in ("tiny", "lite4", ""):
        with pytest.raises(ValueError, match="unknown variant"):
            from_pretrained(variant)


def test_missing_weight_fails_loudly(lite0_state: dict[str, np.ndarray]) -> None:
    name = "_blocks.3._bn1.running_var"
    state = {k: v for k, v in lite0_state.items() if k != name}
    # KeyError from the mapping itself names the key just as an assertion would.
    with pytest.raises((AssertionError, KeyError), match=re.escape(name)):
        params_from_state_dict(state, VARIANTS["lite0"]())


def test_extra_weight_fails_loudly(lite0_state: dict[str, np.ndarray]) -> None:
    state = lite0_state | {"_blocks.16._project_conv.weight": np.zeros((8, 8, 1, 1), np.float32)}
    with pytest.raises(AssertionError, match="unmapped weights"):
        params_from_state_dict(state, VARIANTS["lite0"]())


def test_lite1_weights_do_not_fit_lite0() -> None:
    with pytest.raises(AssertionError):
        params_from_state_dict(load_state_dict(weights_path("lite1")), VARIANTS["lite0"]())


@pytest.mark.parametrize(("name", "shape"), [
    ("_fc.weight", (1000, 1279)),
    ("_blocks.3._project_conv.weight", (40, 143, 1, 1)),  # (O, I): I should be 144
    ("_blocks.3._depthwise_conv.weight", (144, 1, 3, 3)),  # a 5x5 kernel in lite0
])
def test_wrong_shape_fails_loudly(lite0_state: dict[str, np.ndarray], name: str,
                                  shape: tuple[int, ...]) -> None:
    original = lite0_state[name]
    assert original.shape != shape
    state = lite0_state | {name: original[tuple(slice(0, n) for n in shape)]}
    with pytest.raises(AssertionError, match=r"weights .* vs model"):
        params_from_state_dict(state, VARIANTS["lite0"]())


# --- depthwise convolution ----------------------------------------------------------------


@pytest.mark.parametrize("kernel_size", [3, 5])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("hw", [(7, 7), (8, 8), (9, 6), (1, 2)])
def test_depthwise_forms_agree(kernel_size: int, stride: int, hw: tuple[int, int]) -> None:
    rng = np.random.default_rng(kernel_size * 100 + stride * 10 + hw[0])
    x = jnp.asarray(rng.normal(size=(2, *hw, 5)), jnp.float32)
    kernel = jnp.asarray(rng.normal(size=(kernel_size, kernel_size, 5)), jnp.float32)
    shifted = depthwise_conv(x, kernel, stride)
    grouped = grouped_depthwise_conv(x, kernel, stride)
    assert shifted.shape == grouped.shape == (2, -(-hw[0] // stride), -(-hw[1] // stride), 5)
    np.testing.assert_allclose(shifted, grouped, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("hw", [(9, 9), (8, 10)])
def test_patch_conv_equals_textbook_conv(hw: tuple[int, int]) -> None:
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(2, *hw, 3)), jnp.float32)
    kernel = jnp.asarray(rng.normal(size=(3, 3, 3, 4)), jnp.float32)
    want = jax.lax.conv_general_dilated(x, kernel, (2, 2), "SAME",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))
    np.testing.assert_allclose(patch_conv(x, kernel, 2), want, rtol=1e-5, atol=1e-5)


def test_tiny_variant_end_to_end() -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    model = VARIANTS["tiny"]()
    params = jax.jit(model.init)(jax.random.key(0), pixels)
    features, logits = jax.jit(model.apply)(params, pixels)
    assert features.shape == (3, 1280) and logits.shape == (3, 8)
    assert bool(jnp.isfinite(logits).all()) and float(jnp.abs(logits).max()) > 0
    grouped = VARIANTS["tiny"](depthwise="grouped")
    grouped_features, grouped_logits = jax.jit(grouped.apply)(params, pixels)
    np.testing.assert_allclose(grouped_features, features, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(grouped_logits, logits, rtol=1e-5, atol=1e-5)


def test_run_backbone_equals_apply() -> None:
    pixels = np.random.default_rng(1).integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    model = VARIANTS["tiny"]()
    params = jax.jit(model.init)(jax.random.key(1), pixels[:1])
    chunked = jax.jit(functools.partial(run_backbone, model))(params, pixels)
    whole = jax.jit(model.apply)(params, pixels)
    for got, want in zip(chunked, whole, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


# --- numerics on real photos --------------------------------------------------------------


@pytest.mark.parametrize("variant", ["lite0", "lite1", "lite2"])
def test_matches_onnx_reference(read_photo: Callable[[str], bytes],
                                pretrained: Callable[[str], Pretrained],
                                forward: Callable, variant: str) -> None:
    from model.evaluation.onnx_reference import ort_session

    model, _params = pretrained(variant)
    photos = PHOTOS if variant == "lite0" else PHOTOS[:1]
    pixels = pixels_of(read_photo, photos, model.resolution)
    session = ort_session(load_state_dict(weights_path(variant)), model)
    want_features, want_logits = session.run(
        ["features", "logits"], {"pixels": np.asarray(normalize(pixels)).transpose(0, 3, 1, 2)})
    features, logits = forward(variant, pixels)
    np.testing.assert_allclose(features, want_features, rtol=0, atol=1e-4)
    np.testing.assert_allclose(logits, want_logits, rtol=0, atol=1e-4)
    if variant == "lite0":  # and the photos are what their names say
        assert list(logits.argmax(-1)) == [151, 254, 207, 258]


def test_bfloat16_products_keep_lite0s_answers(read_photo: Callable[[str], bytes],
                                               forward: Callable) -> None:
    model, params = from_pretrained("lite0", matmul="bfloat16")
    assert params["params"]["block1"]["expand"]["kernel"].dtype == jnp.bfloat16
    pixels = pixels_of(read_photo, PHOTOS, model.resolution)
    _, want = forward("lite0", pixels)
    _, logits = jax.jit(functools.partial(model.apply, params))(pixels)
    assert list(np.asarray(logits).argmax(-1)) == list(want.argmax(-1))
    # bfloat16 keeps 8 bits of mantissa: logits (about -5 to 20) move by tenths, not more;
    # but they move (float32 stays within 1e-4 of ORT), so the products did run in bfloat16.
    np.testing.assert_allclose(logits, want, rtol=0, atol=0.5)
    assert np.abs(np.asarray(logits) - want).max() > 1e-2


def test_bfloat16_products_only_where_the_cpu_has_bfloat16_dot_products(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    for flags, want in (("fpu avx2 avx512f avx512_bf16 avx512_vnni", "bfloat16"),
                        ("fpu avx2 amx_bf16 amx_tile", "bfloat16"),
                        ("fpu avx2 avx512f avx512_vnni", "float32")):
        cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n\n"
                           f"processor\t: 1\nflags\t\t: {flags}\n")
        assert fastest_matmul(cpuinfo) == want
    assert fastest_matmul(tmp_path / "no-such-file") == "float32"  # not Linux: stay exact


@pytest.mark.parametrize("cpu", ["float32", "bfloat16"])
def test_auto_serves_the_fastest_products_but_not_to_a_head_fitted_on_exact_features(
        cpu: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model.efficientnet, "fastest_matmul", lambda: cpu)
    for setting, fitted_on, want in (("auto", None, cpu),  # ImageNet's head
                                     ("auto", "bfloat16", cpu),
                                     ("auto", "float32", "float32"),  # a file from before
                                     ("bfloat16", "float32", "bfloat16"),  # as the setting says
                                     ("float32", "bfloat16", "float32")):
        assert served_matmul(setting, fitted_on) == want
    with pytest.raises(ValueError, match=r"^matmul must be one of \('auto', 'float32', "
                                         r"'bfloat16'\), not 'float16'$"):
        served_matmul("float16")


def lite0_record(read_photo: Callable[[str], bytes], forward: Callable,
                 photos: list[str]) -> dict[str, dict]:
    features, logits = forward("lite0", pixels_of(read_photo, photos, 224))
    return {photo: {"features_every_40th": [float(v) for v in feature[::40]],
                    "top5": [int(i) for i in np.argsort(-logit)[:5]]}
            for photo, feature, logit in zip(photos, features, logits, strict=True)}


def test_lite0_matches_recorded_values(read_photo: Callable[[str], bytes],
                                       forward: Callable) -> None:
    recorded = json.loads(RECORDED.read_text())["photos"]
    current = lite0_record(read_photo, forward, list(recorded))
    for photo, want in recorded.items():
        got = current[photo]
        assert len(want["features_every_40th"]) == 32
        np.testing.assert_allclose(got["features_every_40th"], want["features_every_40th"],
                                   rtol=0, atol=1e-4, err_msg=photo)
        assert got["top5"] == want["top5"], photo


if __name__ == "__main__" and sys.argv[1:] == ["--record"]:
    datasets = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
    model, params = from_pretrained("lite0")
    apply = jax.jit(functools.partial(model.apply, params))
    record = lite0_record(lambda p: (datasets / p).read_bytes(),
                          lambda _v, x: tuple(map(np.asarray, apply(jnp.asarray(x)))),
                          [PHOTOS[0], PHOTOS[2], PHOTOS[3]])
    RECORDED.parent.mkdir(exist_ok=True)
    text = json.dumps({
        "note": "EfficientNet-Lite0 (from_pretrained('lite0'), shifted depthwise, jax.jit on CPU) "
                "pooled features[::40] (32 of 1280) and top-5 ImageNet indices of photos under "
                "../shared/datasets, each read with model.preprocess.load_image(bytes, 224). "
                "Written by `.venv/bin/python -m tests.test_efficientnet --record`; the values "
                "also matched the ONNX Runtime reference (model.evaluation.onnx_reference) "
                "within 1e-4.",
        "photos": record,
    }, indent=1)
    # One line per list of numbers.
    text = re.sub(r"\[\s+([^\[\]{}]*?)\s+\]", lambda m: f"[{' '.join(m[1].split())}]", text)
    RECORDED.write_text(text + "\n")
    print(f"wrote {RECORDED}")
