"""Tests for model.evaluation.layer_profile: every layer of each engine lands in its kind."""

from __future__ import annotations

import functools

import jax
import numpy as np
import pytest

from model.efficientnet import VARIANTS, from_pretrained, run_backbone, weights_path
from model.evaluation.layer_profile import KINDS, OTHER, jax_profile, ort_profile
from model.evaluation.onnx_reference import ort_session
from model.preprocess import normalize
from model.torch_pickle import load_state_dict


def test_jax_profile_finds_each_kind_of_the_tiny_model() -> None:
    model = VARIANTS["tiny"]()  # block 0: depthwise k3 s1, no expand; block 1: k3 s2
    pixels = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    params = jax.jit(model.init)(jax.random.key(0), pixels[:1])
    forward = jax.jit(lambda p, x: run_backbone(model, p, x)[1])
    spent = jax_profile(model, forward, (params, pixels), runs=2)
    for kind in ("stem", "depthwise k3 s1", "depthwise k3 s2", "1×1 expand",
                 "1×1 project (+ residual)", "head 1×1", "pool + classifier"):
        assert spent[kind] > 0, kind
    assert spent["depthwise k5 s1"] == spent["depthwise k5 s2"] == 0
    assert spent[OTHER] < 0.5 * spent["total"]
    assert spent["total"] == pytest.approx(sum(spent[kind] for kind in KINDS))


def test_ort_profile_maps_every_node_of_lite0() -> None:
    model, _ = from_pretrained("lite0")
    pixels = np.random.default_rng(0).integers(0, 256, (1, 224, 224, 3), dtype=np.uint8)
    session = functools.partial(ort_session, load_state_dict(weights_path("lite0")), model, 1)
    spent = ort_profile(model, session, np.asarray(normalize(pixels)).transpose(0, 3, 1, 2), 2)
    assert all(spent[kind] > 0 for kind in KINDS if kind != OTHER), spent
    assert spent[OTHER] < 0.1 * spent["total"]  # ORT's own layout changes only
