"""Read a legacy (pre-1.6, non-zip) ``torch.save`` file of a state_dict without torch.

The legacy format is a run of pickles on one stream:

    magic number | protocol version | sys info | the object | storage keys
    then, for each storage key in order: int64 element count + raw little-endian bytes

Tensors inside "the object" are pickled as calls to ``torch._utils._rebuild_tensor_v2``
whose storage argument is a persistent id ``('storage', StorageType, key, location, numel)``.
We unpickle those into small placeholders, then read the raw storages and view them
as numpy arrays with the recorded size, stride and offset.
"""

from __future__ import annotations

import collections
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C

_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class TorchPickleError(ValueError):
    """The file is not a legacy torch state_dict this reader understands."""


@dataclass
class _StorageRef:
    key: str
    dtype: type


@dataclass
class _TensorRef:
    storage: _StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor_v2(storage, offset, size, stride, *_ignored) -> _TensorRef:
    return _TensorRef(storage, offset, tuple(size), tuple(stride))


class _StorageType:
    def __init__(self, name: str):
        self.name = name


class _Unpickler(pickle.Unpickler):
    """Resolves only the handful of globals a state_dict needs; anything else is refused."""

    def find_class(self, module: str, name: str):
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise TorchPickleError(f"unexpected global {module}.{name} in a state_dict file")

    def persistent_load(self, pid):
        # ('storage', type, key, location, numel[, view_metadata]); views predate torch 1.0
        if (len(pid) not in (5, 6) or pid[0] != "storage" or not isinstance(pid[1], _StorageType)
                or pid[5:] not in ((), (None,))):
            raise TorchPickleError(f"unexpected persistent id {pid!r:.80}")
        return _StorageRef(str(pid[2]), _STORAGE_DTYPES[pid[1].name])


def _read_exactly(stream: BinaryIO, count: int) -> bytes:
    data = stream.read(count)
    if len(data) != count:
        raise TorchPickleError("file is truncated")
    return data


def _read_storage(stream: BinaryIO, dtype: type) -> np.ndarray:
    (count,) = struct.unpack("<q", _read_exactly(stream, 8))
    data = _read_exactly(stream, count * np.dtype(dtype).itemsize)
    return np.frombuffer(data, dtype=np.dtype(dtype).newbyteorder("<"))


def _as_array(ref: _TensorRef, storages: dict[str, np.ndarray]) -> np.ndarray:
    flat = storages[ref.storage.key]
    # as_strided trusts its arguments: check the view stays inside its storage.
    last = ref.offset + sum((n - 1) * s for n, s in zip(ref.size, ref.stride, strict=True))
    if ref.offset < 0 or min(ref.stride, default=0) < 0 or (
            0 not in ref.size and last >= len(flat)):
        raise TorchPickleError("a tensor lies outside its storage")
    itemsize = flat.itemsize
    view = np.lib.stride_tricks.as_strided(
        flat[ref.offset :],
        shape=ref.size,
        strides=tuple(s * itemsize for s in ref.stride),
    )
    return np.array(view)  # own the memory, native byte order


def load_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Return the state_dict in ``path`` as ``{name: numpy array}``, in file order."""
    with open(path, "rb") as stream:
        try:
            return _load(stream)
        except TorchPickleError:
            raise
        except Exception as error:  # a damaged pickle can fail with almost any exception
            raise TorchPickleError(f"{path} is not a readable torch state_dict: {error!r}") \
                from error


def _load(stream: BinaryIO) -> dict[str, np.ndarray]:
    # Every pickle goes through the restricted unpickler: a crafted file cannot run code.
    if _Unpickler(stream).load() != LEGACY_MAGIC:
        raise TorchPickleError("not a legacy (pre-1.6) torch file")
    _Unpickler(stream).load()  # protocol version
    if not _Unpickler(stream).load().get("little_endian", True):  # sys info
        raise TorchPickleError("big-endian torch files are not supported")
    tensors = _Unpickler(stream).load()
    storage_keys = _Unpickler(stream).load()
    dtypes = {t.storage.key: t.storage.dtype for t in tensors.values()}
    storages = {key: _read_storage(stream, dtypes[key]) for key in storage_keys}
    return {name: _as_array(ref, storages) for name, ref in tensors.items()}
