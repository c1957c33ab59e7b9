"""safetensors (read, atomic write) and .npy files, as numpy arrays."""

import ctypes
import os

import numpy as np

from . import _lib
from ._core import Handle, new_handle, resolve_context
from ._lib import lib

# numpy dtype <-> SCALAR_DTYPE_* for the types numpy has.
_NUMPY_TO_DTYPE = {
    np.dtype(np.float32): 0, np.dtype(np.float16): 1, np.dtype(np.int32): 3,
    np.dtype(np.int64): 4, np.dtype(np.uint16): 5, np.dtype(np.float64): 6,
    np.dtype(np.int8): 7, np.dtype(np.uint8): 8, np.dtype(np.int16): 9,
    np.dtype(np.uint32): 10, np.dtype(np.uint64): 11, np.dtype(np.bool_): 12,
}
_DTYPE_TO_NUMPY = {v: k for k, v in _NUMPY_TO_DTYPE.items()}


def _path(path):
    return os.fsencode(path)


def _shape_array(shape):
    """An int64 array for a shape; never empty, so a 0-d shape passes a valid pointer."""
    return (ctypes.c_int64 * max(1, len(shape)))(*shape)


def _ptr(arr):
    return arr.ctypes.data


class SafeTensors(Handle):
    """An open safetensors file, mapping-like: name -> float32 numpy array.

    ``st[name]`` converts any stored type to float32 (``read_f32``);
    ``st.raw(name)`` returns the stored type unchanged where numpy has it.
    Arrays are copies: they outlive the file.  Use as a context manager.
    """

    def __init__(self, path, ctx=None):
        self._ctx = resolve_context(ctx)
        self.path = os.fspath(path)
        super().__init__(new_handle(lib.scalar_safetensors_open, self._ctx._handle,
                                    _path(path)), lib.scalar_safetensors_free)
        h = self._handle
        self._names = [_lib._decode(lib.scalar_safetensors_name(h, i))
                       for i in range(lib.scalar_safetensors_count(h))]
        self._index = {n: i for i, n in enumerate(self._names)}
        self.metadata = {}
        for i in range(lib.scalar_safetensors_metadata_count(h)):
            key = lib.scalar_safetensors_metadata_key(h, i)
            self.metadata[_lib._decode(key)] = _lib._decode(
                lib.scalar_safetensors_metadata_get(h, key))

    def keys(self):
        """Tensor names, in file (data offset) order."""
        return list(self._names)

    def __len__(self):
        return len(self._names)

    def __iter__(self):
        return iter(list(self._names))

    def __contains__(self, name):
        return name in self._index

    def items(self):
        return [(n, self[n]) for n in self._names]

    def _i(self, name):
        try:
            return self._index[name]
        except KeyError:
            raise KeyError(name) from None

    def dtype(self, name):
        """The stored element type's safetensors name, e.g. ``"F16"``."""
        return _lib.DTYPE_NAMES[lib.scalar_safetensors_dtype(self._handle, self._i(name))]

    def shape(self, name):
        """The tensor's shape as a tuple (``()`` for a scalar)."""
        i = self._i(name)
        ndim = lib.scalar_safetensors_ndim(self._handle, i)
        out = _shape_array([0] * ndim)
        lib.scalar_safetensors_shape(out, len(out), self._handle, i)
        return tuple(out[:ndim])

    def __getitem__(self, name):
        i = self._i(name)
        arr = np.empty(self.shape(name), dtype=np.float32)
        lib.scalar_safetensors_read_f32(_ptr(arr), arr.size, self._handle, i)
        return arr

    def raw(self, name):
        """A copy in the stored type (float32 for BF16 and float8, which numpy lacks)."""
        i = self._i(name)
        np_dtype = _DTYPE_TO_NUMPY.get(lib.scalar_safetensors_dtype(self._handle, i))
        if np_dtype is None:
            return self[name]
        data, nbytes = ctypes.c_void_p(), ctypes.c_size_t()
        lib.scalar_safetensors_data(ctypes.byref(data), ctypes.byref(nbytes), self._handle, i)
        buf = ctypes.string_at(data.value, nbytes.value) if nbytes.value else b""
        return np.frombuffer(buf, dtype=np_dtype.newbyteorder("<")).astype(
            np_dtype).reshape(self.shape(name))

    def __repr__(self):
        state = "closed" if self.closed else f"{len(self)} tensors"
        return f"<scalar.SafeTensors {self.path!r} {state}>"


def save_safetensors(path, tensors, metadata=None, ctx=None):
    """Write ``{name: array}`` (and string ``metadata``) atomically to ``path``.

    Arrays of float32, float16, float64, int8/16/32/64, uint8/16/32/64 and
    bool are written in their own type; others raise TypeError.
    """
    ctx = resolve_context(ctx)
    keep = []  # (name, code, array, shape): the writer borrows them until write returns
    for name, value in tensors.items():
        arr = np.asarray(value)
        code = _NUMPY_TO_DTYPE.get(arr.dtype.newbyteorder("="))
        if code is None:
            raise TypeError(f"save_safetensors: {name!r} has dtype {arr.dtype}, "
                            "which safetensors cannot hold here")
        # np.asarray keeps 0-d arrays 0-d (ascontiguousarray would make them 1-d)
        arr = np.asarray(arr, dtype=arr.dtype.newbyteorder("<"), order="C")
        keep.append((name.encode("utf-8"), code, arr, _shape_array(arr.shape)))
    writer = new_handle(lib.scalar_safetensors_writer_create, ctx._handle)
    try:
        for name, code, arr, shape in keep:
            lib.scalar_safetensors_writer_add(writer, name, code, shape, arr.ndim, _ptr(arr),
                                              arr.nbytes)
        for key, value in (metadata or {}).items():
            lib.scalar_safetensors_writer_set_metadata(writer, str(key).encode("utf-8"),
                                                       str(value).encode("utf-8"))
        lib.scalar_safetensors_writer_write(writer, _path(path))
    finally:
        lib.scalar_safetensors_writer_free(writer)


class Npy(Handle):
    """An open .npy array (uint16, int32 or float32, C order)."""

    def __init__(self, path, ctx=None):
        self._ctx = resolve_context(ctx)
        self.path = os.fspath(path)
        super().__init__(new_handle(lib.scalar_npy_open, self._ctx._handle, _path(path)),
                         lib.scalar_npy_free)

    @property
    def dtype(self):
        """The numpy dtype of the stored array."""
        return _DTYPE_TO_NUMPY[lib.scalar_npy_dtype(self._handle)]

    @property
    def shape(self):
        ndim = lib.scalar_npy_ndim(self._handle)
        out = _shape_array([0] * ndim)
        lib.scalar_npy_shape(out, len(out), self._handle)
        return tuple(out[:ndim])

    def read(self):
        """The array, in its stored type."""
        if self.dtype == np.float32:
            arr = np.empty(self.shape, dtype=np.float32)
            lib.scalar_npy_read_f32(_ptr(arr), arr.size, self._handle)
            return arr
        arr = np.empty(self.shape, dtype=np.int32)
        lib.scalar_npy_read_i32(_ptr(arr), arr.size, self._handle)
        return arr.astype(self.dtype, copy=False)

    def __repr__(self):
        return f"<scalar.Npy {self.path!r}>"


def load_npy(path, ctx=None):
    """Read a .npy file into a numpy array of its stored type."""
    with Npy(path, ctx) as npy:
        return npy.read()


def _is_npy(path):
    try:
        with open(path, "rb") as f:
            return f.read(6) == b"\x93NUMPY"
    except OSError:
        return os.fspath(path).endswith(".npy")


def inspect(path, ctx=None):
    """A .npy file's array, or a safetensors file's ``{name: float32 array}``.

    The format is chosen by content (the .npy magic), as `scalar inspect` does.
    """
    if _is_npy(path):
        return load_npy(path, ctx)
    with SafeTensors(path, ctx) as st:
        return {name: st[name] for name in st.keys()}
