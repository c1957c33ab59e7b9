#!/usr/bin/env python3
"""Write the seed corpora of the fuzz targets (standard library only).

    python3 tests/fuzz/make_corpus.py [tests/fuzz/corpus]

Small valid safetensors files, .npy arrays and JSON configs: the fuzzers
mutate these, so they should reach every accepting path of the readers.
The output is committed; rerun after changing this script.
"""
import json
import os
import struct
import sys

SIZES = {"F32": 4, "F16": 2, "BF16": 2, "I32": 4, "I64": 8, "U16": 2, "F64": 8, "I8": 1,
         "U8": 1, "I16": 2, "U32": 4, "U64": 8, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}


def numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def safetensors(tensors, metadata=None, pad=True, json_order=None):
    """tensors: list of (name, dtype, shape, bytes) laid out in list order."""
    header, blobs, off = {}, [], 0
    if metadata is not None:
        header["__metadata__"] = metadata
    entries = {}
    for name, dtype, shape, data in tensors:
        assert len(data) == numel(shape) * SIZES[dtype], name
        entries[name] = {"dtype": dtype, "shape": list(shape),
                         "data_offsets": [off, off + len(data)]}
        off += len(data)
        blobs.append(data)
    for name in (json_order or [t[0] for t in tensors]):
        header[name] = entries[name]
    text = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def npy(descr, shape, data, version=1, fortran=False, trailing_comma=True, order=None):
    shape_txt = "(" + "".join("%d, " % d for d in shape).rstrip(" ") + ")"
    if len(shape) > 1:
        shape_txt = "(" + ", ".join(str(d) for d in shape) + ")"
    items = {"descr": "'%s'" % descr, "fortran_order": "True" if fortran else "False",
             "shape": shape_txt}
    keys = order or ["descr", "fortran_order", "shape"]
    d = "{" + ", ".join("'%s': %s" % (k, items[k]) for k in keys)
    d += ", }" if trailing_comma else "}"
    pre = 10 if version == 1 else 12
    body = d.encode("utf-8")
    body += b" " * ((64 - (pre + len(body) + 1) % 64) % 64) + b"\n"
    lenfmt = "<H" if version == 1 else "<I"
    return b"\x93NUMPY" + bytes([version, 0]) + struct.pack(lenfmt, len(body)) + body + data


def f32(*v):
    return struct.pack("<%df" % len(v), *v)


def write(folder, name, data):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus")

    st = os.path.join(root, "fuzz_safetensors")
    write(st, "empty.safetensors", safetensors([]))
    write(st, "empty_unpadded.safetensors", safetensors([], pad=False))
    write(st, "metadata_only.safetensors", safetensors([], metadata={"format": "pt"}))
    write(st, "sae.safetensors", safetensors(
        [("W_enc", "F32", [2, 3], f32(*range(6))), ("b_enc", "F32", [3], f32(0.5, -1, 2)),
         ("W_dec", "F32", [3, 2], f32(*range(6))), ("b_dec", "F32", [2], f32(0.25, 0.75))],
        metadata={"format": "pt", "hook_name": "blocks.8.hook_resid_pre"}))
    write(st, "scalar_and_empty.safetensors", safetensors(
        [("zero_size", "F32", [0, 4], b""), ("scalar", "F32", [], f32(3.25)),
         ("also_empty", "I64", [3, 0], b"")]))
    write(st, "every_dtype.safetensors", safetensors(
        [("t_" + d.lower(), d, [2], bytes(range(2 * s))) for d, s in SIZES.items()]))
    write(st, "unaligned.safetensors", safetensors(
        [("flag", "U8", [1], b"\x01"), ("w", "F32", [3], f32(1, -2, 3.5)),
         ("h", "F16", [1], b"\x00\x3c")]))
    write(st, "json_order.safetensors", safetensors(
        [("a", "I32", [2], struct.pack("<2i", -1, 7)), ("b", "BF16", [2], b"\x80\x3f\x20\xbe"),
         ("c", "U16", [2, 1], struct.pack("<2H", 50256, 1))],
        metadata={"k": "v"}, json_order=["c", "a", "b"]))
    write(st, "rank8.safetensors", safetensors([("r8", "F16", [1] * 8, b"\x00\x3c")]))

    npd = os.path.join(root, "fuzz_npy")
    write(npd, "f4_2d_v1.npy", npy("<f4", [2, 3], f32(*range(6))))
    write(npd, "i4_1d_v2.npy",
          npy("<i4", [4], struct.pack("<4i", -3, 0, 7, 2 ** 31 - 1), version=2))
    write(npd, "u2_0d_v3.npy", npy("<u2", [], struct.pack("<H", 65535), version=3))
    write(npd, "u2_tokens.npy", npy("<u2", [8], struct.pack("<8H", *range(50250, 50258))))
    write(npd, "f4_zero_size.npy", npy("<f4", [0, 3], b""))
    write(npd, "f4_fortran_1d.npy", npy("<f4", [2], f32(1, 2), fortran=True))
    write(npd, "i4_no_comma_reordered.npy", npy("<i4", [1, 2], struct.pack("<2i", 5, -5),
                                                trailing_comma=False,
                                                order=["shape", "fortran_order", "descr"]))

    js = os.path.join(root, "fuzz_json")
    gpt2 = {"activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"],
            "attn_pdrop": 0.1, "bos_token_id": 50256, "embd_pdrop": 0.1, "eos_token_id": 50256,
            "initializer_range": 0.02, "layer_norm_epsilon": 1e-05, "model_type": "gpt2",
            "n_ctx": 1024, "n_embd": 768, "n_head": 12, "n_layer": 12, "n_positions": 1024,
            "resid_pdrop": 0.1, "summary_activation": None, "summary_first_dropout": 0.1,
            "summary_proj_to_labels": True, "summary_type": "cls_index",
            "summary_use_proj": True, "task_specific_params": {
                "text-generation": {"do_sample": True, "max_length": 50}},
            "vocab_size": 50257}
    write(js, "gpt2_config.json", json.dumps(gpt2, indent=2).encode())
    saelens = {"architecture": "standard", "d_in": 768, "d_sae": 24576, "dtype": "float32",
               "device": "cpu", "apply_b_dec_to_input": True, "finetuning_scaling_factor": False,
               "context_size": 128, "model_name": "gpt2-small",
               "hook_name": "blocks.8.hook_resid_pre", "hook_layer": 8, "hook_head_index": None,
               "prepend_bos": True, "dataset_path": "Skylion007/openwebtext",
               "normalize_activations": "none", "sae_lens_training_version": None,
               "metadata": {"model_name": "gpt2-small", "hook_name": "blocks.8.hook_resid_pre",
                            "hook_head_index": None, "prepend_bos": True,
                            "context_size": 128, "dataset_path": "Skylion007/openwebtext",
                            "neuronpedia_id": "gpt2-small/8-res-jb"}}
    write(js, "saelens_cfg.json", json.dumps(saelens, indent=2).encode())
    topk = {"architecture": "topk", "d_in": 768, "d_sae": 32768, "k": 32,
            "activation_fn_kwargs": {"k": 32}, "apply_b_dec_to_input": False,
            "normalize_activations": "expected_average_only_in", "lr": 0.0004,
            "metadata": {"hook_name": "blocks.6.hook_resid_post"}}
    write(js, "topk_cfg.json", json.dumps(topk).encode())
    write(js, "types.json", json.dumps({"i": -12, "big": 9007199254740992, "f": 1.5e-3,
                                        "s": "caf\u00e9 \u2713 \U0001d11e", "t": True, "f0": False,
                                        "n": None, "a": [1, [2, {"x": {}}]], "o": {}},
                                       ensure_ascii=False).encode())
    write(js, "escapes.json",
          b'{"s": "q\\"b\\\\s\\/\\b\\f\\n\\r\\t\\u00e9\\ud834\\udd1e", "e": 1E+2}')
    write(js, "empty_object.json", b"{}")


if __name__ == "__main__":
    main()
