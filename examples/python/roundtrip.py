"""Write tensors with libscalar, read them back, and run a kernel on them.

Run with the binding on PYTHONPATH (bindings/python) and the library findable
(SCALAR_LIBRARY, the build tree, or an installed libscalar.so.0).
"""
import os
import sys
import tempfile

import numpy as np

import scalar


def main() -> int:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4, 3)).astype(np.float32)
    b = rng.standard_normal((3, 5)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "ab.safetensors")
        scalar.save_safetensors(path, {"a": a, "b": b}, metadata={"made_by": "roundtrip.py"})
        back = scalar.inspect(path)
        assert np.array_equal(back["a"], a) and np.array_equal(back["b"], b)
        with scalar.SafeTensors(path) as st:
            print("tensors:", ", ".join(f"{k} {st.shape(k)}" for k in st.keys()))
            print("metadata:", st.metadata)
    c = scalar.ops.sgemm(back["a"], back["b"])
    err = float(np.max(np.abs(c - a @ b)))
    print(f"libscalar {scalar.version()}: sgemm [4x3]x[3x5] max |error| vs numpy = {err:.1e}")
    return 0 if err < 1e-5 else 1


if __name__ == "__main__":
    sys.exit(main())
