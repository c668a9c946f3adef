#!/usr/bin/env python3
"""Write the seed corpora for fuzz_safetensors and fuzz_gguf (Python 3 stdlib only).

Usage: python3 fuzz/make_corpus.py [OUTDIR]   (default: fuzz/corpus next to this script)

Every seed is a small valid file, so the fuzzer starts from inputs that reach
the deep parts of each parser: all dtypes, metadata, scalar and empty tensors,
misaligned data, GGUF v2 and v3, every KV type, string arrays, non-default
alignment, quantized and unsupported tensor types.
"""
import json
import os
import struct
import sys

# ----------------------------------------------------------- safetensors --

ST_SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
            "BOOL": 1, "U64": 8, "F8_E4M3": 1}


def safetensors(tensors, metadata=None, pad=True):
    """tensors: list of (name, dtype, shape); data back to back in list order."""
    header, blobs, off = {}, [], 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for i, (name, dtype, shape) in enumerate(tensors):
        n = 1
        for d in shape:
            n *= d
        size = n * ST_SIZES[dtype]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + size]}
        blobs.append(bytes((i * 37 + k * 11) & 0xFF for k in range(size)))
        off += size
    text = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        text += b" " * (-(8 + len(text)) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def st_seeds():
    return {
        "all_dtypes.safetensors": safetensors(
            [("f64", "F64", [2, 2]), ("f32", "F32", [3]), ("f16", "F16", [2, 2]), ("bf16", "BF16", [2]),
             ("i64", "I64", [1]), ("i32", "I32", [2]), ("i16", "I16", [3]), ("i8", "I8", [3]), ("u8", "U8", [1, 2]),
             ("bool", "BOOL", [2])],
            {"format": "pt", "note": "seed"}),
        "scalar_empty.safetensors": safetensors(
            [("scalar", "F32", []), ("empty", "F32", [0, 4]), ("after", "F64", [1])]),
        "misaligned.safetensors": safetensors([("b", "I8", [3]), ("w", "F32", [2, 2]), ("d", "F64", [2])]),
        "unsupported.safetensors": safetensors([("f8", "F8_E4M3", [4]), ("u64", "U64", [1])], {"k": "v"}),
        "metadata_only.safetensors": safetensors([], {"a": "1", "b": "two"}),
        "empty.safetensors": safetensors([]),
        "unpadded.safetensors": safetensors([("x", "F16", [4, 1])], pad=False),
    }

# ------------------------------------------------------------------ gguf --

def gstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


SCALAR_FMT = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


def kv(key, vtype, value):
    out = gstr(key) + struct.pack("<I", vtype)
    if vtype == 8:
        return out + gstr(value)
    if vtype == 9:
        etype, items = value
        out += struct.pack("<IQ", etype, len(items))
        for it in items:
            out += gstr(it) if etype == 8 else struct.pack(SCALAR_FMT[etype], it)
        return out
    return out + struct.pack(SCALAR_FMT[vtype], value)


GGML = {"F32": (0, 1, 4), "F16": (1, 1, 2), "Q4_0": (2, 32, 18), "Q4_1": (3, 32, 20), "Q8_0": (8, 32, 34),
        "BF16": (30, 1, 2), "I32": (26, 1, 4), "F64": (28, 1, 8), "Q5_K": (13, 256, 176)}


def gguf(kvs, tensors, version=3, alignment=32):
    """kvs: list of encoded KV bytes; tensors: list of (name, type name, ne list)."""
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs)) + b"".join(kvs)
    infos, blobs, off = b"", [], 0
    for i, (name, tname, ne) in enumerate(tensors):
        tid, blck, size = GGML[tname]
        n = 1
        for d in ne:
            n *= d
        nbytes = n // blck * size
        infos += gstr(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", d) for d in ne)
        infos += struct.pack("<IQ", tid, off)
        blob = bytes((i * 29 + k * 7) & 0xFF for k in range(nbytes))
        if tname in ("F16", "Q8_0", "Q4_0", "Q4_1"):  # keep f16 scales finite: clear the exponent's top bit
            blob = bytearray(blob)
            stride = size if tname != "F16" else 2
            for b in range(0, nbytes, stride):
                blob[b + 1] &= 0x3F
                if tname == "Q4_1":
                    blob[b + 3] &= 0x3F
            blob = bytes(blob)
        blob += b"\0" * (-nbytes % alignment)
        blobs.append(blob)
        off += len(blob)
    out += infos
    out += b"\0" * (-len(out) % alignment)
    return out + b"".join(blobs)


def gguf_seeds():
    every_kv = [
        kv("general.architecture", 8, "llama"),
        kv("general.alignment", 4, 64),
        kv("t.u8", 0, 200), kv("t.i8", 1, -5), kv("t.u16", 2, 60000), kv("t.i16", 3, -2),
        kv("t.u32", 4, 4000000000), kv("t.i32", 5, -123456), kv("t.f32", 6, 0.5), kv("t.bool", 7, True),
        kv("t.u64", 10, 2**64 - 1), kv("t.i64", 11, -9000000000), kv("t.f64", 12, 1e100),
        kv("tokenizer.ggml.tokens", 9, (8, ["<s>", "</s>", "\u2581hi", ""])),
        kv("tokenizer.ggml.scores", 9, (6, [0.0, -1.5, 2.25, 3.0])),
        kv("tokenizer.ggml.token_type", 9, (5, [1, 3, 1, 1])),
        kv("t.arr_u64", 9, (10, [7, 2**63])), kv("t.arr_bool", 9, (7, [True, False])),
        kv("t.arr_f64", 9, (12, [0.25])), kv("t.arr_empty", 9, (0, [])),
    ]
    tensors = [("token_embd.weight", "F32", [4, 3]), ("f16", "F16", [8]), ("bf16", "BF16", [2, 2, 2]),
               ("blk.0.attn_q.weight", "Q8_0", [64, 2]), ("q40", "Q4_0", [32, 3]), ("q41", "Q4_1", [32, 1, 2, 1]),
               ("i32", "I32", [5]), ("f64", "F64", [3]), ("blk.0.ffn.weight", "Q5_K", [256])]
    return {
        "full_v3.gguf": gguf(every_kv, tensors, 3, 64),
        "full_v2.gguf": gguf(every_kv, tensors, 2, 64),
        "kv_only.gguf": gguf(every_kv[:1] + every_kv[2:], []),
        "tensors_only.gguf": gguf([], tensors[:4]),
        "llama_like.gguf": gguf([kv("general.architecture", 8, "llama"), kv("llama.block_count", 4, 1),
                                 kv("llama.embedding_length", 4, 64), kv("general.quantization_version", 4, 2),
                                 kv("tokenizer.ggml.tokens", 9, (8, ["a", "b"]))],
                                [("output_norm.weight", "F32", [64]), ("output.weight", "Q4_0", [64, 2])]),
        "empty.gguf": gguf([], []),
    }


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    for sub, seeds in (("fuzz_safetensors", st_seeds()), ("fuzz_gguf", gguf_seeds())):
        d = os.path.join(root, sub)
        os.makedirs(d, exist_ok=True)
        for name, data in seeds.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
        print(f"{d}: {len(seeds)} seeds")


if __name__ == "__main__":
    main()
