#!/usr/bin/env python3
"""Write gguf_py_tiny.gguf with the official gguf-py writer (pip package `gguf`,
ggml-org/llama.cpp gguf-py; this file was made with gguf 0.19.0 + numpy).

test_io_gguf reads it back: metadata, shapes (reversed into batpipe order),
and byte-exact agreement of bp_quantize_row with gguf-py's quantizers (ports
of ggml's reference quantize_row_*_ref) for Q8_0, Q4_0 and Q4_1.
Usage: /opt/bpbench/bin/python tests/data/io/make_gguf_py_tiny.py [OUT]
"""
import os
import sys

import numpy as np
from gguf import GGMLQuantizationType as Q
from gguf import GGUFWriter
from gguf.quants import quantize

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                         "gguf_py_tiny.gguf")
w = GGUFWriter(out, "llama")
w.add_uint32("llama.block_count", 2)
w.add_float32("llama.rope.freq_base", 10000.0)
w.add_string("general.name", "tiny")
w.add_bool("t.flag", True)
w.add_array("tokenizer.ggml.tokens", ["<s>", "a", "bc"])
w.add_array("tokenizer.ggml.scores", [0.0, -1.0, 2.5])
w.add_array("tokenizer.ggml.token_type", [3, 1, 1])
x = np.random.default_rng(0).standard_normal((3, 64)).astype(np.float32)
w.add_tensor("f32", x)
w.add_tensor("f16", x.astype(np.float16))
for name, qt in (("q8_0", Q.Q8_0), ("q4_0", Q.Q4_0), ("q4_1", Q.Q4_1)):
    w.add_tensor(name, quantize(x, qt), raw_dtype=qt)
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
