"""Token data: the ASCII tokenizer, datasets with a train/val split, batches.

    ds = scalar.Dataset.load("tinyshakespeare.txt")      # SPEC 1's split
    ds.n_tokens("train"), ds.n_tokens("val")             # 1003776, 111618
    cursor = 0
    x, y, cursor = ds.batch("train", cursor, 128, 128)  # int32 [128, 128] each

Splits are named ``"train"``, ``"val"`` and ``"all"`` (or the integers
``TRAIN``, ``VAL``, ``ALL``); file formats ``"auto"`` (by extension: ``.npy``,
``.bin``, else text), ``"text"``, ``"npy"`` and ``"bin"``.
"""

import ctypes
import os

import numpy as np

from ._core import Handle, new_handle, resolve_context
from ._lib import DataOptions, lib

TRAIN, VAL, ALL = 0, 1, 2
SPLITS = {"train": TRAIN, "val": VAL, "all": ALL}
FORMATS = {"auto": 0, "text": 1, "npy": 2, "bin": 3}


def _split(split):
    if isinstance(split, str):
        try:
            return SPLITS[split]
        except KeyError:
            raise ValueError(f"split must be one of {sorted(SPLITS)}, not {split!r}") from None
    return int(split)


def _bytes(text):
    """str as UTF-8 (one token per byte, as files are read); bytes-like as is."""
    return text.encode("utf-8") if isinstance(text, str) else bytes(text)


def ascii_vocab_size():
    """The ASCII tokenizer's vocabulary size (128)."""
    return lib.scalar_ascii_vocab_size()


def ascii_encode(text):
    """Token ids (int32) of ``text``: one per byte, bytes >= 128 become ``'?'``.

    A ``str`` is encoded as UTF-8 first, so a non-ASCII character gives one
    ``'?'`` per byte, exactly as when the text is read from a file.
    """
    data = _bytes(text)
    ids = np.empty(len(data), dtype=np.int32)
    lib.scalar_ascii_encode(data, len(data), ids.ctypes.data)
    return ids


def ascii_decode(ids):
    """The text of ``ids`` (each in [0, 128)) as a ``str``."""
    arr = np.ascontiguousarray(ids, dtype=np.int32).reshape(-1)
    out = ctypes.create_string_buffer(arr.size + 1)
    lib.scalar_ascii_decode(arr.ctypes.data, arr.size, out, arr.size + 1)
    return out.raw[:arr.size].decode("ascii")


def _options(val_fraction, split_multiple, format, vocab):
    opts = DataOptions()
    lib.scalar_dataset_options_init(ctypes.byref(opts), ctypes.sizeof(opts))
    opts.val_fraction = float(val_fraction)
    opts.split_multiple = int(split_multiple)
    if isinstance(format, str):
        if format not in FORMATS:
            raise ValueError(f"format must be one of {sorted(FORMATS)}, not {format!r}")
        format = FORMATS[format]
    opts.format = int(format)
    opts.vocab = int(vocab)
    return opts


class Dataset(Handle):
    """A token sequence with its vocabulary size and train/val split.

    Make one with :meth:`load`, :meth:`from_text` or :meth:`from_ids`; each
    takes ``val_fraction`` (0.1), ``split_multiple`` (256) and ``vocab`` (0:
    128 for text, max id + 1 for ids) as keywords.  Use as a context manager
    or call ``close()``; the dataset keeps its context alive.
    """

    def __init__(self, handle, ctx):
        self._ctx = ctx
        super().__init__(handle, lib.scalar_dataset_free)

    @classmethod
    def load(cls, paths, ctx=None, *, val_fraction=0.1, split_multiple=256, format="auto",
             vocab=0):
        """One file, or a list of files concatenated in order."""
        ctx = resolve_context(ctx)
        opts = _options(val_fraction, split_multiple, format, vocab)
        if isinstance(paths, (str, bytes, os.PathLike)):
            handle = new_handle(lib.scalar_dataset_load, ctx._handle, os.fsencode(paths),
                                ctypes.byref(opts))
        else:
            names = [os.fsencode(p) for p in paths]
            arr = (ctypes.c_char_p * max(1, len(names)))(*names)
            handle = new_handle(lib.scalar_dataset_load_files, ctx._handle, arr, len(names),
                                ctypes.byref(opts))
        return cls(handle, ctx)

    @classmethod
    def from_text(cls, text, ctx=None, *, val_fraction=0.1, split_multiple=256, vocab=0):
        """Text (``str`` as UTF-8, or bytes) through the ASCII tokenizer."""
        ctx = resolve_context(ctx)
        data = _bytes(text)
        opts = _options(val_fraction, split_multiple, 0, vocab)
        return cls(new_handle(lib.scalar_dataset_create_from_text, ctx._handle, data, len(data),
                              ctypes.byref(opts)), ctx)

    @classmethod
    def from_ids(cls, ids, ctx=None, *, val_fraction=0.1, split_multiple=256, vocab=0):
        """Token ids (any integer array-like; converted to int32, copied)."""
        ctx = resolve_context(ctx)
        arr = np.asarray(ids)
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"from_ids: ids must be integers, not {arr.dtype}")
        if arr.size and (arr.min() < np.iinfo(np.int32).min or arr.max() > np.iinfo(np.int32).max):
            raise ValueError("from_ids: ids must fit in int32")
        arr = np.ascontiguousarray(arr, dtype=np.int32).reshape(-1)
        opts = _options(val_fraction, split_multiple, 0, vocab)
        return cls(new_handle(lib.scalar_dataset_create_from_ids, ctx._handle, arr.ctypes.data,
                              arr.size, ctypes.byref(opts)), ctx)

    @property
    def vocab_size(self):
        """Every id of the dataset is below this."""
        out = ctypes.c_int32()
        lib.scalar_dataset_vocab_size(self._handle, ctypes.byref(out))
        return out.value

    def n_tokens(self, split="all"):
        """The number of tokens in a split."""
        out = ctypes.c_int64()
        lib.scalar_dataset_n_tokens(self._handle, _split(split), ctypes.byref(out))
        return out.value

    def __len__(self):
        return self.n_tokens(ALL)

    def tokens(self, split="all", offset=0, n=None):
        """Tokens [offset, offset + n) of a split (all from offset if n is None), int32."""
        if n is None:
            n = max(0, self.n_tokens(split) - offset)
        out = np.empty(int(n), dtype=np.int32)
        lib.scalar_dataset_tokens(self._handle, _split(split), int(offset), int(n),
                                  out.ctypes.data)
        return out

    def batch(self, split, cursor, B, T):
        """The sequential batch at ``cursor``: ``(x, y, new_cursor)``, x and y int32 [B, T].

        Wraps to the start when ``cursor + B*T + 1`` exceeds the split; y is x
        shifted by one token.  Start with cursor 0 and pass back ``new_cursor``.
        """
        x = np.empty((int(B), int(T)), dtype=np.int32)
        y = np.empty_like(x)
        c = ctypes.c_int64(int(cursor))
        lib.scalar_dataset_batch(self._handle, _split(split), ctypes.byref(c), int(B), int(T),
                                 x.ctypes.data, y.ctypes.data)
        return x, y, c.value

    def batch_random(self, split, seed, step, B, T):
        """B random windows, deterministic in (seed, step): ``(x, y)``, int32 [B, T]."""
        x = np.empty((int(B), int(T)), dtype=np.int32)
        y = np.empty_like(x)
        lib.scalar_dataset_batch_random(self._handle, _split(split), int(seed), int(step),
                                        int(B), int(T), x.ctypes.data, y.ctypes.data)
        return x, y

    def __repr__(self):
        if self.closed:
            return "<scalar.Dataset closed>"
        return (f"<scalar.Dataset {self.n_tokens(TRAIN)} train + {self.n_tokens(VAL)} val "
                f"tokens, vocab {self.vocab_size}>")
