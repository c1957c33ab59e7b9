"""Versions, errors, contexts, backends, and the binding's symbol list."""

import gc
import os
import subprocess
import sys
import tempfile
import textwrap
import unittest

import numpy as np

import scalar
from scalar import _lib


def repo_root():
    src = os.environ.get("SCALAR_SRC")
    if src:
        return src
    return os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


class VersionTest(unittest.TestCase):
    def test_version_string_matches_number(self):
        major, minor, patch = (int(p) for p in scalar.version().split("."))
        self.assertEqual(scalar.version_number(), major * 10000 + minor * 100 + patch)
        self.assertEqual(scalar.__version__, scalar.version())

    def test_abi_is_the_expected_one(self):
        self.assertEqual(scalar.abi_version(), scalar.EXPECTED_ABI)
        self.assertEqual(scalar.EXPECTED_ABI, 0)

    def test_version_matches_header(self):
        path = os.path.join(repo_root(), "include", "scalar", "version.h")
        with open(path) as f:
            header = f.read()
        self.assertIn(f'#define SCALAR_VERSION_STRING "{scalar.version()}"', header)


class ErrorTest(unittest.TestCase):
    def test_unknown_backend_raises_not_found(self):
        with self.assertRaises(scalar.ScalarError) as cm:
            scalar.Context(backend="nosuch")
        e = cm.exception
        self.assertEqual(e.status, scalar.E_NOT_FOUND)
        self.assertEqual(e.name, "SCALAR_E_NOT_FOUND")
        self.assertIn("no backend named", e.message)
        self.assertIn("nosuch", str(e))

    def test_negative_threads_raise_invalid_arg(self):
        with self.assertRaises(scalar.ScalarError) as cm:
            scalar.Context(threads=-1)
        self.assertEqual(cm.exception.status, scalar.E_INVALID_ARG)
        self.assertEqual(cm.exception.name, "SCALAR_E_INVALID_ARG")

    def test_status_strings_name_codes(self):
        self.assertTrue(scalar.status_string(scalar.E_FORMAT).startswith("SCALAR_E_FORMAT"))
        self.assertTrue(scalar.status_string(scalar.OK).startswith("SCALAR_OK"))

    def test_error_is_an_exception_with_fields(self):
        e = scalar.ScalarError(-20, "SCALAR_E_IO: input/output error", "open: x: gone")
        self.assertEqual((e.status, e.name, e.message), (-20, "SCALAR_E_IO", "open: x: gone"))
        self.assertIsInstance(e, Exception)


class ContextTest(unittest.TestCase):
    def test_options_are_applied(self):
        with scalar.Context(threads=1, backend="cpu-ref", seed=1234) as ctx:
            self.assertEqual(ctx.n_threads, 1)
            self.assertEqual(ctx.backend, "cpu-ref")
            self.assertEqual(ctx.seed, 1234)
            self.assertIsInstance(ctx.describe(), str)
            self.assertTrue(ctx.describe())
            self.assertIn("cpu-ref", repr(ctx))

    def test_defaults(self):
        with scalar.Context() as ctx:
            self.assertEqual(ctx.backend, "cpu")
            self.assertGreaterEqual(ctx.n_threads, 1)
            self.assertEqual(ctx.seed, 0x5CA1A8)

    def test_cpu_describe_names_blis(self):
        with scalar.Context(threads=2) as ctx:
            self.assertIn("BLIS", ctx.describe())

    def test_close_is_idempotent_and_blocks_use(self):
        ctx = scalar.Context()
        ctx.close()
        ctx.close()
        self.assertTrue(ctx.closed)
        with self.assertRaises(ValueError):
            ctx.n_threads
        self.assertIn("closed", repr(ctx))

    def test_backends_lists_builtins(self):
        names = scalar.backends()
        self.assertIn("cpu", names)
        self.assertIn("cpu-ref", names)
        self.assertEqual(names[0], "cpu")

    def test_supports_knows_op_names(self):
        with scalar.Context() as ctx:
            for op in _lib.OP_NAMES:
                self.assertIn(ctx.supports(op), (True, False))
            with self.assertRaises(ValueError):
                ctx.supports("no_such_op")


class SymbolsTest(unittest.TestCase):
    def test_binding_declares_every_exported_symbol(self):
        with open(os.path.join(repo_root(), "lib", "scalar.sym")) as f:
            exported = {line.strip() for line in f if line.strip()}
        self.assertEqual(set(_lib.DECLARED), exported - {"scalar_sys_error_set"})
        self.assertEqual(_lib.MISSING, [], "symbols missing from the loaded library")

    def test_status_functions_have_the_errcheck(self):
        for name in _lib.DECLARED:
            fn = getattr(_lib.lib, name)
            if fn.restype is _lib.ST:
                self.assertIs(fn.errcheck, _lib._check, name)
            self.assertIsNotNone(fn.argtypes, name)

    def test_ctx_options_struct_matches_library(self):
        import ctypes
        self.assertEqual(ctypes.sizeof(_lib.CtxOptions), _lib.lib.scalar_ctx_options_size())


class FreeOrderTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.tmp.name, "t.safetensors")
        scalar.save_safetensors(self.path, {"w": np.arange(6, dtype=np.float32).reshape(2, 3)})

    def tearDown(self):
        self.tmp.cleanup()

    def test_context_closed_before_file_is_used(self):
        ctx = scalar.Context()
        st = scalar.SafeTensors(self.path, ctx)
        ctx.close()
        np.testing.assert_array_equal(st["w"], np.arange(6, dtype=np.float32).reshape(2, 3))
        st.close()

    def test_context_collected_before_file(self):
        ctx = scalar.Context()
        st = scalar.SafeTensors(self.path, ctx)
        npy_path = os.path.join(self.tmp.name, "a.npy")
        np.save(npy_path, np.arange(3, dtype=np.int32))
        npy = scalar.Npy(npy_path, ctx)
        del ctx
        gc.collect()
        self.assertEqual(st.shape("w"), (2, 3))
        del st
        gc.collect()
        np.testing.assert_array_equal(npy.read(), [0, 1, 2])
        npy.close()

    def test_file_closed_then_context_closed(self):
        ctx = scalar.Context()
        with scalar.SafeTensors(self.path, ctx) as st:
            self.assertEqual(st.keys(), ["w"])
        self.assertTrue(st.closed)
        with self.assertRaises(ValueError):
            st.shape("w")
        ctx.close()

    def test_interpreter_exit_with_open_objects(self):
        script = textwrap.dedent(f"""
            import scalar, numpy as np
            ctx = scalar.Context()
            st = scalar.SafeTensors({self.path!r}, ctx)
            other = scalar.SafeTensors({self.path!r})
            cycle = [ctx, st]
            cycle.append(cycle)
            x = scalar.ops.gelu(np.ones(4))
            ctx.close()
            print("ok", st["w"].sum())
        """)
        r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           env=os.environ.copy(), timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("ok 15.0", r.stdout)


if __name__ == "__main__":
    unittest.main()
