"""Tests for model.torch_pickle: the real lite0 weights, and legacy files written here (no torch).

The synthetic files follow the layout of torch's ``_legacy_save`` (torch < 1.6):
magic number, protocol version and sys info pickles, the state_dict pickled with storages as
persistent ids and tensors as ``torch._utils._rebuild_tensor_v2`` calls, the storage keys,
then each storage as an int64 element count and its raw little-endian bytes.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import pickletools
import struct
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

from model.efficientnet import weights_path
from model.torch_pickle import TorchPickleError, load_state_dict

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C  # torch.serialization.MAGIC_NUMBER
PROTOCOL_VERSION = 1001
SYS_INFO = {
    "protocol_version": PROTOCOL_VERSION,
    "little_endian": True,
    "type_sizes": {"short": 2, "int": 4, "long": 4},
}


# Stand-ins that pickle by reference as torch's own globals (see _fake_torch_modules).
def _rebuild_tensor_v2(*args: object) -> None:
    raise AssertionError("pickled by reference only, never called")


class FloatStorage:
    pass


class LongStorage:
    pass


_rebuild_tensor_v2.__module__ = "torch._utils"
FloatStorage.__module__ = LongStorage.__module__ = "torch"
_STORAGE_TYPES = {np.dtype(np.float32): FloatStorage, np.dtype(np.int64): LongStorage}


def _fake_torch_modules() -> dict[str, types.ModuleType]:
    """Modules for sys.modules while pickling, so pickle can find the stand-ins by name."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")
    torch.FloatStorage, torch.LongStorage = FloatStorage, LongStorage
    torch._utils = utils
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    return {"torch": torch, "torch._utils": utils}


@dataclass(eq=False)
class Storage:
    key: str
    values: np.ndarray  # 1-D float32 or int64


@dataclass(eq=False)
class Tensor:
    storage: Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]

    def expected(self) -> np.ndarray:
        """The tensor's values, indexed element by element (independent of as_strided)."""
        index = np.full(self.size, self.offset, dtype=np.int64)
        for axis, step in enumerate(self.stride):
            shape = [1] * len(self.size)
            shape[axis] = self.size[axis]
            index = index + step * np.arange(self.size[axis]).reshape(shape)
        return self.storage.values[index]


class _LegacyPickler(pickle.Pickler):
    def persistent_id(self, obj: object) -> tuple | None:
        if isinstance(obj, Storage):
            storage_type = _STORAGE_TYPES[obj.values.dtype]
            return ("storage", storage_type, obj.key, "cpu", obj.values.size, None)
        return None

    def reducer_override(self, obj: object) -> object:
        if isinstance(obj, Tensor):
            args = (obj.storage, obj.offset, obj.size, obj.stride, False,
                    collections.OrderedDict())
            return _rebuild_tensor_v2, args
        return NotImplemented


def legacy_bytes(state: dict[str, object]) -> bytes:
    """``state`` ({name: Tensor}, or anything picklable) saved in torch's legacy format."""
    storages = list({id(t.storage): t.storage for t in state.values()
                     if isinstance(t, Tensor)}.values())
    stream = io.BytesIO()
    with mock.patch.dict(sys.modules, _fake_torch_modules()):
        for header in (MAGIC_NUMBER, PROTOCOL_VERSION, SYS_INFO):
            pickle.dump(header, stream, protocol=2)
        _LegacyPickler(stream, protocol=2).dump(collections.OrderedDict(state))
        pickle.dump([s.key for s in storages], stream, protocol=2)
    for storage in storages:
        stream.write(struct.pack("<q", storage.values.size))
        stream.write(storage.values.astype(storage.values.dtype.newbyteorder("<")).tobytes())
    return stream.getvalue()


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# --- the real weights ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def lite0_state() -> dict[str, np.ndarray]:
    return load_state_dict(weights_path("lite0"))


def test_lite0_state_dict_has_every_tensor(lite0_state: dict[str, np.ndarray]) -> None:
    assert len(lite0_state) == 296
    assert next(iter(lite0_state)) == "_conv_stem.weight"  # file order is kept
    assert list(lite0_state)[-2:] == ["_fc.weight", "_fc.bias"]
    assert sum(a.size for a in lite0_state.values()) == 4_694_073


@pytest.mark.parametrize(("name", "shape", "dtype"), [
    ("_conv_stem.weight", (32, 3, 3, 3), np.float32),
    ("_bn0.num_batches_tracked", (), np.int64),
    ("_blocks.0._depthwise_conv.weight", (32, 1, 3, 3), np.float32),
    ("_blocks.15._project_conv.weight", (320, 1152, 1, 1), np.float32),
    ("_bn1.running_var", (1280,), np.float32),
    ("_fc.weight", (1000, 1280), np.float32),
    ("_fc.bias", (1000,), np.float32),
])
def test_lite0_shapes_and_dtypes(lite0_state: dict[str, np.ndarray], name: str,
                                 shape: tuple[int, ...], dtype: type) -> None:
    assert lite0_state[name].shape == shape
    assert lite0_state[name].dtype == dtype


def test_lite0_known_values(lite0_state: dict[str, np.ndarray]) -> None:
    np.testing.assert_array_equal(
        lite0_state["_conv_stem.weight"].ravel()[:3],
        np.float32([-1.1103360652923584, -1.3087704181671143, -0.010156914591789246]))
    np.testing.assert_array_equal(
        lite0_state["_fc.bias"][[0, 1, 2, -1]],
        np.float32([0.032053910195827484, -0.01598576083779335, 0.005290735047310591,
                    0.03138429671525955]))
    assert lite0_state["_fc.weight"][0, 0] == np.float32(-0.04561043530702591)
    assert lite0_state["_fc.weight"][999, 1279] == np.float32(0.04085797071456909)
    assert all(np.isfinite(a).all() for a in lite0_state.values())
    assert all(lite0_state[k].min() >= 0 for k in lite0_state if k.endswith("running_var"))


# --- synthetic legacy files ---------------------------------------------------------------


@pytest.fixture
def tensors() -> dict[str, Tensor]:
    """Contiguous, transposed, strided-with-offset, shared-storage and scalar tensors."""
    floats = Storage("140001", np.arange(24, dtype=np.float32) * 1.5 - 7)
    other = Storage("140002", np.float32([3.25, -1e-30, 6e20, 0.5, 2.0, -0.0]))
    count = Storage("140003", np.int64([-(2**40)]))
    return {
        "conv.weight": Tensor(other, 0, (2, 3), (3, 1)),  # contiguous
        "transposed": Tensor(floats, 2, (3, 4), (1, 3)),  # floats[2:14].reshape(4, 3).T
        "strided": Tensor(floats, 5, (2, 3), (8, 2)),  # offset, gaps between elements
        "tail": Tensor(floats, 20, (4,), (1,)),  # runs up to the storage's last element
        "broadcast": Tensor(other, 4, (2, 2), (0, 1)),  # stride 0, as in expand()
        "bn.num_batches_tracked": Tensor(count, 0, (), ()),
    }


def test_synthetic_file_round_trips(tmp_path: Path, tensors: dict[str, Tensor]) -> None:
    loaded = load_state_dict(write(tmp_path / "w.pth", legacy_bytes(tensors)))
    assert list(loaded) == list(tensors)
    for name, tensor in tensors.items():
        assert loaded[name].dtype == tensor.storage.values.dtype, name
        assert loaded[name].shape == tensor.size, name
        np.testing.assert_array_equal(loaded[name], tensor.expected(), err_msg=name)
    np.testing.assert_array_equal(loaded["transposed"],
                                  (np.arange(24, dtype=np.float32) * 1.5 - 7)[2:14]
                                  .reshape(4, 3).T)
    assert loaded["bn.num_batches_tracked"] == -(2**40)


def test_tensors_own_their_memory(tmp_path: Path, tensors: dict[str, Tensor]) -> None:
    loaded = load_state_dict(write(tmp_path / "w.pth", legacy_bytes(tensors)))
    loaded["transposed"] += 100  # must not leak into the other views of the same storage
    np.testing.assert_array_equal(loaded["strided"], tensors["strided"].expected())
    np.testing.assert_array_equal(loaded["tail"], tensors["tail"].expected())


def test_foreign_global_is_refused_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self) -> tuple:
            return os.system, (f"touch {marker}",)

    path = write(tmp_path / "evil.pth", legacy_bytes({"weight": Payload()}))
    with pytest.raises(TorchPickleError, match="system"):
        load_state_dict(path)
    assert not marker.exists()


def test_foreign_persistent_id_is_refused(tmp_path: Path) -> None:
    class Module:
        pass

    class Pickler(_LegacyPickler):
        def persistent_id(self, obj: object) -> tuple | None:
            return ("module", "x", "y", "cpu", 1) if isinstance(obj, Module) else None

    stream = io.BytesIO()
    for header in (MAGIC_NUMBER, PROTOCOL_VERSION, SYS_INFO):
        pickle.dump(header, stream, protocol=2)
    Pickler(stream, protocol=2).dump(collections.OrderedDict(weight=Module()))
    with pytest.raises(TorchPickleError, match="persistent id"):
        load_state_dict(write(tmp_path / "w.pth", stream.getvalue()))


def test_view_past_the_storage_end_is_refused(tmp_path: Path) -> None:
    storage = Storage("1", np.arange(4, dtype=np.float32))
    data = legacy_bytes({"w": Tensor(storage, 2, (3,), (1,))})  # needs 5 elements, has 4
    with pytest.raises(TorchPickleError):
        load_state_dict(write(tmp_path / "w.pth", data))


def _section_ends(data: bytes) -> list[int]:
    """Offsets where each pickle of the file ends (magic, version, sys info, object, keys)."""
    stream, ends = io.BytesIO(data), []
    for _ in range(5):
        for _op in pickletools.genops(stream):  # reads up to and including STOP
            pass
        ends.append(stream.tell())
    return ends


@pytest.mark.parametrize("where", [
    "in the magic number",
    "in the sys info",
    "in the tensors pickle",
    "before a storage's count",
    "in a storage's bytes",
    "one byte short",
])
def test_truncated_file_is_refused(tmp_path: Path, tensors: dict[str, Tensor],
                                   where: str) -> None:
    data = legacy_bytes(tensors)
    magic, version, sys_info, obj, keys = _section_ends(data)
    cut = {
        "in the magic number": magic - 3,
        "in the sys info": sys_info - 5,
        "in the tensors pickle": (sys_info + obj) // 2,
        "before a storage's count": keys + 4,
        "in a storage's bytes": keys + 8 + 10,
        "one byte short": len(data) - 1,
    }[where]
    with pytest.raises(TorchPickleError):
        load_state_dict(write(tmp_path / "cut.pth", data[:cut]))


@pytest.mark.parametrize("data", [
    b"",
    b"\x89PNG\r\n\x1a\n" + bytes(64),
    b"PK\x03\x04" + bytes(64),  # the zip format of torch >= 1.6
    pickle.dumps({"weight": [1.0, 2.0]}),  # a pickle, but not a torch file
    b"hello, world\n",
], ids=["empty", "png", "zip", "plain-pickle", "text"])
def test_non_torch_file_is_refused(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(TorchPickleError):
        load_state_dict(write(tmp_path / "x.pth", data))
