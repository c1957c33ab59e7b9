"""safetensors and .npy through the binding, and interchange with PyPI safetensors."""

import os
import tempfile
import unittest

import numpy as np

import scalar

try:
    import safetensors.numpy as st_numpy
except ImportError:  # optional: the interchange tests skip without it...
    st_numpy = None

# ...unless CI asks for them (.ci/run installs the peer and sets this).
REQUIRE_INTEROP = os.environ.get("SCALAR_REQUIRE_INTEROP") == "1"


class TmpDirTest(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.tmp = self._tmp.name

    def tearDown(self):
        self._tmp.cleanup()

    def path(self, name):
        return os.path.join(self.tmp, name)


def sample_tensors():
    rng = np.random.default_rng(7)
    return {
        "f32": rng.standard_normal((3, 5)).astype(np.float32),
        "f16": rng.standard_normal((4,)).astype(np.float16),
        "i32": rng.integers(-1000, 1000, size=(2, 2, 3), dtype=np.int32),
        "i64": rng.integers(-(2 ** 20), 2 ** 20, size=(7,), dtype=np.int64),
        "u16": rng.integers(0, 50257, size=(2, 8), dtype=np.uint16),
        "scalar0d": np.array(3.25, dtype=np.float32),
        "empty": np.zeros((0, 4), dtype=np.float32),
        "empty_i32": np.zeros((5, 0), dtype=np.int32),
    }


class SafeTensorsRoundTripTest(TmpDirTest):
    def test_round_trip_several_dtypes_and_shapes(self):
        tensors = sample_tensors()
        path = self.path("rt.safetensors")
        scalar.save_safetensors(path, tensors)
        with scalar.SafeTensors(path) as st:
            self.assertEqual(st.keys(), list(tensors))
            self.assertEqual(len(st), len(tensors))
            want_dtypes = {"f32": "F32", "f16": "F16", "i32": "I32", "i64": "I64", "u16": "U16",
                           "scalar0d": "F32", "empty": "F32", "empty_i32": "I32"}
            for name, arr in tensors.items():
                self.assertEqual(st.dtype(name), want_dtypes[name], name)
                self.assertEqual(st.shape(name), arr.shape, name)
                got = st[name]
                self.assertEqual(got.dtype, np.float32, name)
                self.assertEqual(got.shape, arr.shape, name)
                np.testing.assert_array_equal(got, arr.astype(np.float32), err_msg=name)
                raw = st.raw(name)
                self.assertEqual(raw.dtype, arr.dtype, name)
                np.testing.assert_array_equal(raw, arr, err_msg=name)

    def test_inspect_returns_float32_dict(self):
        tensors = sample_tensors()
        path = self.path("inspect.safetensors")
        scalar.save_safetensors(path, tensors)
        got = scalar.inspect(path)
        self.assertEqual(list(got), list(tensors))
        for name, arr in tensors.items():
            np.testing.assert_array_equal(got[name], arr.astype(np.float32), err_msg=name)

    def test_metadata_round_trip(self):
        path = self.path("meta.safetensors")
        meta = {"format": "pt", "note": "ünïcode ✓", "empty": ""}
        scalar.save_safetensors(path, {"x": np.ones(2, np.float32)}, metadata=meta)
        with scalar.SafeTensors(path) as st:
            self.assertEqual(st.metadata, meta)

    def test_no_metadata_is_empty_dict(self):
        path = self.path("nometa.safetensors")
        scalar.save_safetensors(path, {"x": np.ones(2, np.float32)})
        with scalar.SafeTensors(path) as st:
            self.assertEqual(st.metadata, {})

    def test_non_contiguous_and_big_endian_inputs(self):
        base = np.arange(24, dtype=np.float32).reshape(4, 6)
        tensors = {"t": base.T, "slice": base[:, ::2], "be": np.arange(5, dtype=">i4")}
        path = self.path("nc.safetensors")
        scalar.save_safetensors(path, tensors)
        with scalar.SafeTensors(path) as st:
            np.testing.assert_array_equal(st["t"], base.T)
            np.testing.assert_array_equal(st["slice"], base[:, ::2])
            np.testing.assert_array_equal(st.raw("be"), np.arange(5, dtype=np.int32))

    def test_unsupported_dtype_raises_type_error(self):
        with self.assertRaises(TypeError):
            scalar.save_safetensors(self.path("c.safetensors"), {"c": np.ones(2, np.complex64)})

    def test_missing_key_raises_key_error(self):
        path = self.path("k.safetensors")
        scalar.save_safetensors(path, {"x": np.ones(2, np.float32)})
        with scalar.SafeTensors(path) as st:
            self.assertIn("x", st)
            self.assertNotIn("y", st)
            with self.assertRaises(KeyError):
                st["y"]

    def test_write_on_explicit_context(self):
        with scalar.Context(backend="cpu-ref") as ctx:
            path = self.path("ctx.safetensors")
            scalar.save_safetensors(path, {"x": np.ones(3, np.float32)}, ctx=ctx)
            with scalar.SafeTensors(path, ctx=ctx) as st:
                np.testing.assert_array_equal(st["x"], np.ones(3))


class ErrorPathTest(TmpDirTest):
    def test_missing_file_is_io_error_naming_the_path(self):
        path = self.path("does-not-exist.safetensors")
        with self.assertRaises(scalar.ScalarError) as cm:
            scalar.SafeTensors(path)
        self.assertEqual(cm.exception.status, scalar.E_IO)
        self.assertEqual(cm.exception.name, "SCALAR_E_IO")
        self.assertIn("does-not-exist.safetensors", cm.exception.message)

    def test_corrupt_safetensors_is_format_error(self):
        path = self.path("corrupt.safetensors")
        with open(path, "wb") as f:
            f.write(b"\x40" + b"\x00" * 7 + b'{"a":[1')
        with self.assertRaises(scalar.ScalarError) as cm:
            scalar.SafeTensors(path)
        self.assertEqual(cm.exception.status, scalar.E_FORMAT)
        self.assertTrue(cm.exception.message)

    def test_write_to_missing_folder_is_io_error(self):
        path = self.path("no/such/folder/x.safetensors")
        with self.assertRaises(scalar.ScalarError) as cm:
            scalar.save_safetensors(path, {"x": np.ones(1, np.float32)})
        self.assertEqual(cm.exception.status, scalar.E_IO)

    def test_missing_npy_is_io_error(self):
        with self.assertRaises(scalar.ScalarError) as cm:
            scalar.load_npy(self.path("nope.npy"))
        self.assertEqual(cm.exception.status, scalar.E_IO)


class NpyTest(TmpDirTest):
    def test_numpy_written_arrays_read_back_equal(self):
        rng = np.random.default_rng(3)
        arrays = {
            "u16": rng.integers(0, 65535, size=(4, 9), dtype=np.uint16),
            "i32": rng.integers(-(2 ** 31), 2 ** 31 - 1, size=(3, 2, 5), dtype=np.int32),
            "f32": rng.standard_normal((6, 7)).astype(np.float32),
            "f32_1d": rng.standard_normal(10).astype(np.float32),
            "i32_0d": np.array(17, dtype=np.int32),
            "u16_empty": np.zeros((0,), dtype=np.uint16),
        }
        for name, arr in arrays.items():
            path = self.path(name + ".npy")
            np.save(path, arr)
            got = scalar.load_npy(path)
            self.assertEqual(got.dtype, arr.dtype, name)
            self.assertEqual(got.shape, arr.shape, name)
            np.testing.assert_array_equal(got, arr, err_msg=name)
            with scalar.Npy(path) as npy:
                self.assertEqual(npy.shape, arr.shape)
                self.assertEqual(npy.dtype, arr.dtype)
            np.testing.assert_array_equal(scalar.inspect(path), arr, err_msg=name)

    def test_fortran_order_2d_is_unsupported(self):
        path = self.path("fortran.npy")
        np.save(path, np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)))
        with self.assertRaises(scalar.ScalarError) as cm:
            scalar.load_npy(path)
        self.assertEqual(cm.exception.status, scalar.E_UNSUPPORTED)
        self.assertEqual(cm.exception.name, "SCALAR_E_UNSUPPORTED")

    def test_float64_is_unsupported(self):
        path = self.path("f64.npy")
        np.save(path, np.arange(3, dtype=np.float64))
        with self.assertRaises(scalar.ScalarError) as cm:
            scalar.load_npy(path)
        self.assertEqual(cm.exception.status, scalar.E_UNSUPPORTED)

    def test_inspect_sniffs_content_not_extension(self):
        path = self.path("ids.bin")
        with open(path, "wb") as f:
            np.save(f, np.arange(4, dtype=np.int32))
        np.testing.assert_array_equal(scalar.inspect(path), np.arange(4))


@unittest.skipIf(st_numpy is None and not REQUIRE_INTEROP,
                 "PyPI safetensors is not installed: interchange not tested")
class PyPISafetensorsTest(TmpDirTest):
    def setUp(self):
        super().setUp()
        if st_numpy is None:
            self.fail("SCALAR_REQUIRE_INTEROP=1 but PyPI safetensors cannot be imported")

    def test_files_written_by_pypi_load_in_ours(self):
        tensors = sample_tensors()
        path = self.path("theirs.safetensors")
        st_numpy.save_file(tensors, path, metadata={"format": "np"})
        with scalar.SafeTensors(path) as st:
            self.assertEqual(set(st.keys()), set(tensors))
            self.assertEqual(st.metadata, {"format": "np"})
            for name, arr in tensors.items():
                np.testing.assert_array_equal(st.raw(name), arr, err_msg=name)

    def test_files_we_write_load_in_pypi(self):
        tensors = sample_tensors()
        path = self.path("ours.safetensors")
        scalar.save_safetensors(path, tensors, metadata={"who": "libscalar"})
        got = st_numpy.load_file(path)
        self.assertEqual(set(got), set(tensors))
        for name, arr in tensors.items():
            self.assertEqual(got[name].dtype, arr.dtype, name)
            np.testing.assert_array_equal(got[name], arr, err_msg=name)


if __name__ == "__main__":
    unittest.main()
