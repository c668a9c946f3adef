#!/usr/bin/env python3
"""Convert a GGUF model's quantized tensors to F16 (or F32), for benchmarks.

    gguf_to_f16.py IN.gguf OUT.gguf [--type f16|f32]

Every metadata entry is copied (general.file_type is set to the new type);
every Q8_0/Q4_0/Q4_1/... tensor is dequantized with gguf-py
(gguf.quants.dequantize, the same block formulas as ggml) and stored as
F16 (or F32); F32 tensors (norms) stay F32. Tensor names, shapes and order
are kept, so llama.cpp and batpipe read the result as the same model in
another weight type. Needs the `gguf` package from PyPI (gguf-py, 0.19).
"""
import argparse

import numpy as np
import gguf


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--type", choices=["f16", "f32"], default="f16")
    a = ap.parse_args()
    r = gguf.GGUFReader(a.src)
    arch = r.fields["general.architecture"].contents()
    w = gguf.GGUFWriter(a.dst, arch)
    ftype = gguf.LlamaFileType.MOSTLY_F16 if a.type == "f16" else gguf.LlamaFileType.ALL_F32
    for name, f in r.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture":
            continue
        if name == "general.file_type":
            w.add_file_type(ftype)
            continue
        vtype = f.types[0]
        sub = f.types[1] if vtype == gguf.GGUFValueType.ARRAY and len(f.types) > 1 else None
        w.add_key_value(name, f.contents(), vtype, sub_type=sub)
    out_dtype = np.float16 if a.type == "f16" else np.float32
    for t in r.tensors:
        if t.tensor_type in (gguf.GGMLQuantizationType.F32,):
            data = np.array(t.data, dtype=np.float32)
        else:
            data = gguf.quants.dequantize(t.data, t.tensor_type).astype(out_dtype)
        # reader shapes are ggml order (ne0 first); numpy arrays want the reverse
        data = data.reshape([int(x) for x in reversed(t.shape)])
        w.add_tensor(t.name, data)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    main()
