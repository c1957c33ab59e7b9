"""Token data through the binding: the ASCII tokenizer, datasets, splits, batches."""

import ctypes
import os
import tempfile
import unittest

import numpy as np

import scalar
from scalar import _lib


def shakespeare_path():
    base = os.environ.get("SCALAR_SHARED_DATA")
    if not base:
        here = os.path.dirname(os.path.abspath(__file__))
        base = os.path.join(here, "..", "..", "..", "shared", "data")
    return os.path.join(base, "tinyshakespeare.txt")


class AsciiTest(unittest.TestCase):
    def test_round_trip(self):
        text = "First Citizen:\nBefore we proceed any further, hear me speak.\n"
        ids = scalar.ascii_encode(text)
        self.assertEqual(ids.dtype, np.int32)
        self.assertEqual(ids.tolist(), [ord(c) for c in text])
        self.assertEqual(scalar.ascii_decode(ids), text)
        self.assertEqual(scalar.ascii_decode([]), "")
        self.assertEqual(scalar.ascii_vocab_size(), 128)

    def test_bytes_beyond_ascii_become_question_marks(self):
        self.assertEqual(scalar.ascii_encode(b"a\xffb").tolist(), [97, 63, 98])
        self.assertEqual(scalar.ascii_encode("é!").tolist(), [63, 63, 33])  # two UTF-8 bytes

    def test_decode_rejects_ids_outside_the_vocabulary(self):
        with self.assertRaises(scalar.ScalarError) as cm:
            scalar.ascii_decode([97, 128, 98])
        self.assertEqual(cm.exception.status, scalar.E_INVALID_ARG)
        self.assertIn("id 128 at index 1", cm.exception.message)


class DatasetTest(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.tmp = self._tmp.name

    def tearDown(self):
        self._tmp.cleanup()

    def path(self, name):
        return os.path.join(self.tmp, name)

    def test_options_struct_matches_library(self):
        self.assertEqual(ctypes.sizeof(_lib.DataOptions), _lib.lib.scalar_dataset_options_size())

    def test_from_text_split_and_tokens(self):
        with scalar.Dataset.from_text("abcdefghij", split_multiple=1) as ds:
            self.assertEqual(len(ds), 10)
            self.assertEqual(ds.n_tokens("train"), 9)
            self.assertEqual(ds.n_tokens(scalar.VAL), 1)
            self.assertEqual(ds.vocab_size, 128)
            self.assertEqual(ds.tokens("val").tolist(), [ord("j")])
            self.assertEqual(ds.tokens("train", 2, 3).tolist(), [99, 100, 101])
            self.assertEqual(ds.tokens().dtype, np.int32)
            self.assertIn("9 train + 1 val", repr(ds))
        self.assertIn("closed", repr(ds))

    def test_split_rule_defaults(self):
        ds = scalar.Dataset.from_ids(np.zeros(1000, np.int32))
        self.assertEqual(ds.n_tokens("train"), 768)  # int(0.9 * 1000) rounded down to 256s
        self.assertEqual(ds.n_tokens("val"), 232)
        self.assertEqual(ds.vocab_size, 1)

    def test_from_ids_vocab(self):
        ds = scalar.Dataset.from_ids([3, 1, 4, 1, 5], vocab=10)
        self.assertEqual(ds.vocab_size, 10)
        with self.assertRaises(scalar.ScalarError) as cm:
            scalar.Dataset.from_ids([3, 1, 4, 1, 5], vocab=5)
        self.assertEqual(cm.exception.status, scalar.E_INVALID_ARG)
        self.assertIn("id 5 at index 4", cm.exception.message)
        with self.assertRaises(TypeError):
            scalar.Dataset.from_ids([1.5, 2.0])

    def test_batch_is_sequential_and_wraps(self):
        ds = scalar.Dataset.from_ids(np.arange(100), val_fraction=0.0, split_multiple=1)
        x, y, cursor = ds.batch("train", 0, 2, 4)
        self.assertEqual(x.shape, (2, 4))
        self.assertEqual(x.dtype, np.int32)
        np.testing.assert_array_equal(x, np.arange(8).reshape(2, 4))
        np.testing.assert_array_equal(y, np.arange(1, 9).reshape(2, 4))
        self.assertEqual(cursor, 8)
        x, y, cursor = ds.batch("train", 96, 2, 4)  # 96 + 9 > 100: back to the start
        np.testing.assert_array_equal(x.reshape(-1), np.arange(8))
        self.assertEqual(cursor, 8)
        with self.assertRaises(scalar.ScalarError) as cm:
            ds.batch("train", 0, 10, 10)
        self.assertEqual(cm.exception.status, scalar.E_SHAPE)
        self.assertIn("needs B*T + 1 = 101", cm.exception.message)
        with self.assertRaises(ValueError):
            ds.batch("test", 0, 1, 1)

    def test_batch_random_is_deterministic(self):
        ds = scalar.Dataset.from_ids(np.arange(1000), val_fraction=0.0, split_multiple=1)
        x1, y1 = ds.batch_random("train", 42, 3, 4, 16)
        x2, y2 = ds.batch_random("train", 42, 3, 4, 16)
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
        np.testing.assert_array_equal(y1, x1 + 1)
        np.testing.assert_array_equal(x1[:, 1:], x1[:, :-1] + 1)

    def test_load_files_of_every_format(self):
        np.save(self.path("ids.npy"), np.array([5, 6], dtype=np.uint16))
        np.array([300, 7], dtype="<u2").tofile(self.path("ids.bin"))
        with open(self.path("a.txt"), "wb") as f:
            f.write(b"ab")
        with scalar.Dataset.load(self.path("ids.npy"), split_multiple=1) as ds:
            self.assertEqual(ds.tokens().tolist(), [5, 6])
            self.assertEqual(ds.vocab_size, 7)
        names = [self.path("a.txt"), self.path("ids.bin"), self.path("ids.npy")]
        with scalar.Dataset.load(names, split_multiple=1) as ds:
            self.assertEqual(ds.tokens().tolist(), [97, 98, 300, 7, 5, 6])
            self.assertEqual(ds.vocab_size, 301)
        with scalar.Dataset.load(self.path("ids.bin"), format="text") as ds:
            self.assertEqual(ds.tokens().tolist(), [44, 1, 7, 0])
        np.save(self.path("i4.npy"), np.array([1, 2, 3], dtype=np.int32))
        ds = scalar.Dataset.load(self.path("i4.npy"), vocab=1000)
        self.assertEqual(ds.vocab_size, 1000)

    def test_load_errors(self):
        missing = self.path("missing.txt")
        with self.assertRaises(scalar.ScalarError) as cm:
            scalar.Dataset.load(missing)
        self.assertEqual(cm.exception.status, scalar.E_IO)
        self.assertIn(missing, cm.exception.message)
        np.save(self.path("f.npy"), np.zeros(3, np.float32))
        with self.assertRaises(scalar.ScalarError) as cm:
            scalar.Dataset.load(self.path("f.npy"))
        self.assertEqual(cm.exception.status, scalar.E_FORMAT)
        np.save(self.path("neg.npy"), np.array([1, -4], np.int32))
        with self.assertRaises(scalar.ScalarError) as cm:
            scalar.Dataset.load(self.path("neg.npy"))
        self.assertIn("id -4 at index 1 is negative", cm.exception.message)
        with open(self.path("odd.bin"), "wb") as f:
            f.write(b"abc")
        with self.assertRaises(scalar.ScalarError) as cm:
            scalar.Dataset.load(self.path("odd.bin"))
        self.assertEqual(cm.exception.status, scalar.E_FORMAT)
        with self.assertRaises(scalar.ScalarError) as cm:
            scalar.Dataset.from_text("abc", val_fraction=1.0)
        self.assertIn("val_fraction", cm.exception.message)
        with self.assertRaises(scalar.ScalarError) as cm:
            scalar.Dataset.load([])
        self.assertIn("n_paths is 0", cm.exception.message)
        with self.assertRaises(ValueError):
            scalar.Dataset.load(missing, format="csv")

    def test_context_may_close_first(self):
        ctx = scalar.Context(backend="cpu-ref")
        ds = scalar.Dataset.from_text("hello world", ctx)
        ctx.close()
        self.assertEqual(len(ds), 11)
        ds.close()

    @unittest.skipUnless(os.path.exists(shakespeare_path()), "tinyshakespeare.txt is absent")
    def test_tiny_shakespeare_split(self):
        with scalar.Dataset.load(shakespeare_path()) as ds:
            self.assertEqual(ds.n_tokens("all"), 1115394)
            self.assertEqual(ds.n_tokens("train"), 1003776)
            self.assertEqual(ds.n_tokens("val"), 111618)
            self.assertEqual(scalar.ascii_decode(ds.tokens("train", 0, 14)), "First Citizen:")


if __name__ == "__main__":
    unittest.main()
