#!/usr/bin/env python3
"""llama.cpp (through llama-cpp-python) counterpart of bench_llama.

    llama_cpp_bench.py MODEL [-t 1,2] [-p 128] [-n 64] [-r 3]

Same measurement as bench/bench_llama.c: for each thread count, load the
model (timed), then R rounds of
  prefill: eval of the P prompt token ids (i*7919 + 13) % 20000 + 100 from
           position 0 (logits of the last position only, llama.cpp's default),
  decode:  N evals of one token each, greedy on the previous logits,
and print one line per thread count with the best round:
  llama.cpp threads=T load_s=L prefill_tok_s=A decode_tok_s=B rss_load_mb=X rss_gen_mb=Y
llama.cpp runs with its defaults as llama-cpp-python sets them (mmap, n_batch
= n_ubatch = 512, F16 KV cache, no flash attention), n_threads = n_threads_batch = T.
"""
import argparse
import os
import time

import numpy as np
from llama_cpp import Llama


def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return float(line.split()[1]) / 1024.0
    return -1.0


def last_logits(llm):
    """The logits of the last evaluated position (llama-cpp-python only fills
    Llama.scores with logits_all=True; read llama.cpp's buffer instead)."""
    return np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("-t", default="1,2", help="thread counts")
    ap.add_argument("-p", type=int, default=128, help="prompt tokens")
    ap.add_argument("-n", type=int, default=64, help="generated tokens")
    ap.add_argument("-r", type=int, default=3, help="rounds (best is reported)")
    a = ap.parse_args()
    prompt = [(i * 7919 + 13) % 20000 + 100 for i in range(a.p)]
    for threads in [int(x) for x in a.t.split(",") if x]:
        t0 = time.perf_counter()
        llm = Llama(model_path=a.model, n_ctx=a.p + a.n + 8, n_threads=threads, n_threads_batch=threads,
                    n_batch=512, n_ubatch=512, logits_all=False, verbose=False)
        load_s = time.perf_counter() - t0
        rss_load = rss_mb()
        best_pf = best_dec = float("inf")
        for _ in range(a.r):
            llm.reset()
            t = time.perf_counter()
            llm.eval(prompt)
            pf = time.perf_counter() - t
            tok = int(np.argmax(last_logits(llm)))
            t = time.perf_counter()
            for _ in range(a.n):
                llm.eval([tok])
                tok = int(np.argmax(last_logits(llm)))
            dec = time.perf_counter() - t
            best_pf, best_dec = min(best_pf, pf), min(best_dec, dec)
        print(f"llama.cpp threads={threads} load_s={load_s:.3f} prefill_tok_s={a.p / best_pf:.1f} "
              f"decode_tok_s={a.n / best_dec:.1f} rss_load_mb={rss_load:.1f} rss_gen_mb={rss_mb():.1f} "
              f"file_mb={os.path.getsize(a.model) / 1048576.0:.1f} prompt={a.p} gen={a.n}", flush=True)
        llm.close()
        del llm


if __name__ == "__main__":
    main()
