"""Context, versions and backends.

Handles are freed by ``weakref.finalize``: it runs once, whether through
``close()``, garbage collection or interpreter exit, and holds no reference
to the object.  The C library reference-counts contexts (children hold a
reference), so Python may free a context before or after its children.
"""

import ctypes
import threading
import weakref

from . import _lib
from ._lib import lib


def version():
    """The loaded library's version string, e.g. ``"0.1.0"``."""
    return _lib._decode(lib.scalar_version_string())


def version_number():
    """The loaded library's version as MAJOR*10000 + MINOR*100 + PATCH."""
    return lib.scalar_version()


def abi_version():
    """The ABI counter of the loaded library (the N of libscalar.so.N)."""
    return lib.scalar_abi_version()


def backends():
    """Names of the registered backends, e.g. ``['cpu', 'cpu-ref']``."""
    names = (lib.scalar_backend_name(i) for i in range(lib.scalar_backend_count()))
    return [_lib._decode(n) for n in names if n is not None]


class Handle:
    """An owned C handle freed once by ``free_fn`` (close, GC, or exit)."""

    def __init__(self, ptr, free_fn):
        self._ptr = ptr
        self._finalizer = weakref.finalize(self, free_fn, ptr)

    @property
    def closed(self):
        return not self._finalizer.alive

    @property
    def _handle(self):
        if not self._finalizer.alive:
            raise ValueError(f"{type(self).__name__} is closed")
        return self._ptr

    def close(self):
        """Free the C object now; later calls do nothing."""
        self._finalizer()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def new_handle(create_fn, *args):
    """Calls ``create_fn(&out, *args)`` and returns the handle as an int."""
    out = ctypes.c_void_p()
    create_fn(ctypes.byref(out), *args)
    return out.value


class Context(Handle):
    """A libscalar context: backend, thread count and seed.

    ``Context(threads=0, backend=None, seed=None)``: 0 threads means the OpenMP
    default; backend None means "cpu"; seed None the library default.  Use it
    as a context manager or call ``close()``; objects made on it keep it alive.
    """

    def __init__(self, threads=0, backend=None, seed=None):
        opts = _lib.CtxOptions()
        lib.scalar_ctx_options_init(ctypes.byref(opts), ctypes.sizeof(opts))
        opts.n_threads = int(threads)
        if backend is not None:
            opts.backend = backend.encode("utf-8")
        if seed is not None:
            opts.seed = int(seed)
        super().__init__(new_handle(lib.scalar_ctx_create, ctypes.byref(opts)),
                         lib.scalar_ctx_free)

    @property
    def n_threads(self):
        """Worker threads of the context's kernels."""
        return lib.scalar_ctx_n_threads(self._handle)

    @property
    def seed(self):
        """The seed the context was created with."""
        return lib.scalar_ctx_seed(self._handle)

    @property
    def backend(self):
        """The name of the context's backend."""
        return _lib._decode(lib.scalar_ctx_backend_name(self._handle))

    @property
    def _backend_ptr(self):
        return lib.scalar_ctx_backend(self._handle)

    def describe(self):
        """One line about the backend's configuration (BLIS version, threads...)."""
        return _lib._decode(lib.scalar_backend_describe(self._backend_ptr))

    def supports(self, op):
        """True if the backend runs kernel ``op`` (e.g. "sgemm") natively."""
        return bool(lib.scalar_backend_supports(self._backend_ptr, _lib.OP_NAMES.index(op)))

    def __repr__(self):
        if self.closed:
            return "<scalar.Context closed>"
        return (f"<scalar.Context backend={self.backend!r} n_threads={self.n_threads} "
                f"seed={self.seed:#x}>")


_default_lock = threading.Lock()
_default_ctx = None


def default_context():
    """The context used when a function is given ``ctx=None`` (made on first use)."""
    global _default_ctx
    with _default_lock:
        if _default_ctx is None or _default_ctx.closed:
            _default_ctx = Context()
        return _default_ctx


def resolve_context(ctx):
    return default_context() if ctx is None else ctx
