#!/usr/bin/env python3
"""Greedy 32-token continuations of fixed prompts on
models/SmolLM2-135M-Instruct.Q4_1.gguf by two reference implementations,
written to tests/llm/continuation_refs.h for tests/llm/test_continuation.c:

1. Hugging Face transformers (the float reference, checked against the llama
   plugin's precision = "exact"): LlamaForCausalLM loaded from the GGUF file
   itself (`from_pretrained(dir, gguf_file=...)`: every weight dequantized
   to float32 by gguf-py, q/k rows permuted back to Hugging Face's order),
   run in float32 on CPU with eager attention; prompt in one forward, then
   one token per step through its KV cache.
2. llama.cpp through llama-cpp-python (checked against precision = "fast"):
   argmax over llama.cpp's logits after each eval (no sampler chain).

Both start from the same prompt ids (llama.cpp's tokenizer, special tokens
parsed, no BOS: SmolLM2's add_bos_token is false); the script checks that
transformers' tokenizer built from the same GGUF gives the same ids (the C
test checks batpipe's). Each continuation stops early at EOS (<|im_end|>,
id 2), which is then the last recorded token. At every step the top-1
minus top-2 logit margin is recorded, to tell a near-tie (where two correct
implementations may pick differently) from a real mismatch. For the float
reference the script also replays each continuation in float64 (the same
model in double precision, teacher-forced on the float32 tokens) and
reports any step where float64 picks another token: such a step is a tie
at float32 precision.

transformers 4.57 needs torch >= 2.2 (5.x needs torch >= 2.6, newer than
the torch 2.5.1 of /opt/bpbench) and huggingface_hub < 1.0, so it lives in
its own venv that sees /opt/bpbench's packages (torch, numpy, gguf,
llama_cpp) through a .pth file:

    /root/.pyenv/versions/3.11.7/bin/python3 -m venv /opt/bpbench-hf
    echo /opt/bpbench/lib/python3.11/site-packages \\
        > /opt/bpbench-hf/lib/python3.11/site-packages/zz_bpbench.pth
    /opt/bpbench-hf/bin/pip install 'transformers>=4.57,<5' 'accelerate<2'
    HF_HUB_OFFLINE=1 /opt/bpbench-hf/bin/python tests/llm/make_continuation_refs.py

No network is used: the model is the local file.
"""
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
import llama_cpp  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
MODEL_DIR = os.path.join(ROOT, "models")
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL = os.path.join(MODEL_DIR, MODEL_FILE)

SYSTEM = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):\n",
    "Once upon a time, there was a little",
    SYSTEM + "<|im_start|>user\nWhat is the speed of sound in air?<|im_end|>\n<|im_start|>assistant\n",
    "Based on the audio you've heard, refer to the instruction and provide a response.\n\n### Instruction:\n"
    "Where is the dog barking?\n\n### Response:",
]
N_NEW = 32
EOS = 2
TIE = 1e-3  # margins below this are ties at float32 precision (the C test's rule)


def c_string(s):
    out = '"'
    for b in s.encode("utf-8"):
        c = chr(b)
        if c == '"':
            out += '\\"'
        elif c == "\\":
            out += "\\\\"
        elif 0x20 <= b < 0x7F and c != "?":
            out += c
        else:
            out += "\\%03o" % b
    return out + '"'


def top2(logits):
    logits = np.asarray(logits, dtype=np.float64)
    order = np.argsort(-logits, kind="stable")
    return int(order[0]), float(logits[order[0]] - logits[order[1]])


def run_llama_cpp(prompts_ids):
    llm = llama_cpp.Llama(model_path=MODEL, n_ctx=512, n_threads=2, logits_all=True, verbose=False)
    rows = []
    for prompt in prompts_ids:
        llm.reset()
        llm.eval(prompt)
        out, margins = [], []
        for _ in range(N_NEW):
            tok, margin = top2(llm.scores[llm.n_tokens - 1])
            out.append(tok)
            margins.append(margin)
            if tok == EOS:
                break
            llm.eval([tok])
        rows.append((out, margins, llm.detokenize(out).decode("utf-8", "replace")))
    return rows


def run_hf(model, prompt):
    """Greedy continuation in the model's dtype, prompt in one forward, then one token per step."""
    out, margins = [], []
    with torch.no_grad():
        res = model(torch.tensor([prompt]), use_cache=True)
        for _ in range(N_NEW):
            tok, margin = top2(res.logits[0, -1].double().numpy())
            out.append(tok)
            margins.append(margin)
            if tok == EOS:
                break
            res = model(torch.tensor([[tok]]), past_key_values=res.past_key_values, use_cache=True)
    return out, margins


def replay(model, prompt, out):
    """Teacher-forced argmax and margin at each generated step (one forward over prompt + continuation)."""
    with torch.no_grad():
        logits = model(torch.tensor([prompt + out[:-1]])).logits[0].double().numpy()
    return [top2(logits[len(prompt) - 1 + s]) for s in range(len(out))]


def write_refs(f, tag, rows):
    for k, r in enumerate(rows):
        f.write("static const int32_t cont_%s_ids_%d[] = {%s};\n" % (tag, k, ", ".join(map(str, r["ids"]))))
        f.write("static const float cont_%s_margins_%d[] = {%s};\n"
                % (tag, k, ", ".join("%.4ff" % x for x in r["margins"])))
    f.write("\nstatic const cont_ref cont_refs_%s[] = {\n" % tag)
    for k, r in enumerate(rows):
        f.write("    {%s,\n     cont_prompt_%d, %d, cont_%s_ids_%d, cont_%s_margins_%d, %d, %.6f,\n     %s},\n"
                % (c_string(r["prompt"]), k, len(r["prompt_ids"]), tag, k, tag, k, len(r["ids"]),
                   min(r["margins"]), c_string(r["text"])))
    f.write("};\n\n")


def main():
    if not os.path.exists(MODEL):
        print("missing %s (scripts/fetch-model.sh)" % MODEL, file=sys.stderr)
        return 1
    torch.set_num_threads(2)

    # prompt ids: llama.cpp's tokenizer, cross-checked with transformers' (from the same GGUF)
    vocab = llama_cpp.Llama(model_path=MODEL, vocab_only=True, verbose=False)
    prompts_ids = [vocab.tokenize(t.encode("utf-8"), add_bos=False, special=True) for t in PROMPTS]
    del vocab
    hf_tok = AutoTokenizer.from_pretrained(MODEL_DIR, gguf_file=MODEL_FILE)
    for text, ids in zip(PROMPTS, prompts_ids):
        hf_ids = hf_tok(text, add_special_tokens=False)["input_ids"]
        if hf_ids != ids:
            print("tokenizers disagree on %r: llama.cpp %s, transformers %s" % (text, ids, hf_ids), file=sys.stderr)
            return 1
    print("prompt ids: llama.cpp and transformers agree on %d/%d prompts" % (len(PROMPTS), len(PROMPTS)))

    # 1. transformers, float32 (and a float64 replay)
    model = AutoModelForCausalLM.from_pretrained(MODEL_DIR, gguf_file=MODEL_FILE, dtype=torch.float32,
                                                 attn_implementation="eager")
    model.eval()
    hf_rows = []
    for text, prompt in zip(PROMPTS, prompts_ids):
        ids, margins = run_hf(model, prompt)
        hf_rows.append({"prompt": text, "prompt_ids": prompt, "ids": ids, "margins": margins,
                        "text": hf_tok.decode(ids[:-1] if ids[-1] == EOS else ids)})
    model64 = model.double()
    n_steps = n_diff = 0
    for k, r in enumerate(hf_rows):
        steps = replay(model64, r["prompt_ids"], r["ids"])
        diffs = [s for s, (tok, _) in enumerate(steps) if tok != r["ids"][s]]
        n_steps += len(steps)
        n_diff += len(diffs)
        ties = [s for s, m in enumerate(r["margins"]) if m < TIE]
        print("transformers %d: %r -> %r (min margin %.4f; float64 replay: %d/%d steps agree%s%s)"
              % (k, r["prompt"][-40:], r["text"], min(r["margins"]), len(steps) - len(diffs), len(steps),
                 ", differs at %s" % diffs if diffs else "", ", ties (< %g) at %s" % (TIE, ties) if ties else ""))
    print("float32 vs float64 transformers: %d of %d steps pick the same token" % (n_steps - n_diff, n_steps))
    del model, model64

    # 2. llama.cpp
    cpp_rows = []
    for text, prompt, (ids, margins, out_text) in zip(PROMPTS, prompts_ids, run_llama_cpp(prompts_ids)):
        cpp_rows.append({"prompt": text, "prompt_ids": prompt, "ids": ids, "margins": margins, "text": out_text})
        print("llama.cpp: %r -> %r (min margin %.4f)" % (text[-40:], out_text, min(margins)))

    with open(os.path.join(HERE, "continuation_refs.h"), "w") as f:
        f.write("/* Generated by tests/llm/make_continuation_refs.py on SmolLM2-135M-Instruct.Q4_1.gguf. Do not edit.\n"
                " *   cont_refs_hf:  Hugging Face transformers %s (torch %s), float32, greedy: the float\n"
                " *                  reference of precision = \"exact\";\n"
                " *   cont_refs_cpp: llama.cpp (llama-cpp-python %s), greedy over its logits: checked\n"
                " *                  against precision = \"fast\". */\n"
                % (transformers.__version__, torch.__version__.split("+")[0], llama_cpp.__version__))
        f.write("#ifndef BP_CONTINUATION_REFS_H\n#define BP_CONTINUATION_REFS_H\n\n#include <stdint.h>\n\n")
        f.write("typedef struct cont_ref {\n    const char *prompt;\n    const int32_t *prompt_ids;\n"
                "    int32_t n_prompt;\n    const int32_t *ids;\n"
                "    const float *margins; /* the reference's top-1 minus top-2 logit at each step */\n"
                "    int32_t n_ids;\n"
                "    double min_margin; /* smallest top-1 minus top-2 logit along the way */\n"
                "    const char *text;  /* the reference's detokenized continuation */\n} cont_ref;\n\n")
        for k, prompt in enumerate(prompts_ids):
            f.write("static const int32_t cont_prompt_%d[] = {%s};\n" % (k, ", ".join(map(str, prompt))))
        f.write("\n")
        write_refs(f, "hf", hf_rows)
        write_refs(f, "cpp", cpp_rows)
        f.write("#endif\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
