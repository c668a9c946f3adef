#!/usr/bin/env python3
"""Generates the tokenizer parity references for tests/llm/test_tok_parity.c.

Run once (needs the `sentencepiece`, `tokenizers` and `gguf` PyPI packages;
optionally `llama-cpp-python` as a second reference for SmolLM2):

    python3 tests/llm/make_tok_refs.py [--model models/SmolLM2-135M-Instruct.Q4_1.gguf]

It writes
  tests/data/llm/tiny_spm.gguf           SentencePiece BPE model trained here ("llama" tokenizer)
  tests/data/llm/tiny_spm_tokenizer.json the same model as a Hugging Face tokenizer.json
  tests/data/llm/tiny_bpe.gguf           byte-level BPE trained here with HF tokenizers ("gpt2")
  tests/data/llm/tiny_bpe_tokenizer.json the same model as written by HF tokenizers
  tests/data/llm/tiny_bpe_tokenizer_config.json
  tests/llm/tok_refs.h                   expected ids for every (model, string) pair

References:
  tiny_spm (GGUF and json): sentencepiece's own encode (SentencePieceProcessor.encode);
    the json is also checked against HF tokenizers loading it.
  tiny_bpe (GGUF and json): HF tokenizers' encode of the trained tokenizer.
  smollm2: HF tokenizers built from the GGUF's own vocabulary and merges with
    SmolLM2's pre-tokenizer (Digits(individual_digits) + ByteLevel) and its
    control tokens as special added tokens; cross-checked against llama.cpp
    (llama-cpp-python, vocab_only) when it is installed.
"""
import argparse
import io
import json
import os
import sys

import gguf
import sentencepiece as spm
from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DATA = os.path.join(ROOT, "tests", "data", "llm")

# Training text (written for this test; public-domain style prose, some
# accents, digits and code so that the vocabularies have merges for them).
CORPUS = """\
The quick brown fox jumps over the lazy dog. The dog sleeps in the sun.
Spatial audio lets a listener hear where a sound comes from: left or right, front or behind, above or below.
A binaural recording has two channels, one for each ear. The interaural phase difference tells the direction.
The model answers questions about the sound: what is it, where is it, how far away is it?
It is 2.5 meters away, to the left and in front. The dog barks 3 times; the bell rings at 12:30.
Numbers like 1024, 32000 and 3.14159 appear in audio code. We use 128 mel bins and a 10 second clip.
def main(argv):
    for i in range(10):
        print(i * 2)  # twice
    return 0
Café, naïve, résumé, façade, jalapeño, Zürich, São Paulo, Ångström, déjà vu.
I'm sure it's fine, we'd say they're right and you'll see that I've done it.
Hello world! Hello, world? Hello... world; hello: world (hello) [world] {hello}.
The reverberation time of a room depends on its size and the absorption of its walls.
Sound sources: a dog, a cat, a car, a bell, a piano, speech, music, rain, wind and birds.
"""

TEST_STRINGS = [
    "",
    "Hello world",
    "Hello, world! How are you doing today?",
    " leading space",
    "  two leading spaces",
    "trailing space ",
    "multiple   spaces   between    words",
    "\n",
    "\n\n\n",
    "line one\nline two\n\nline four\n",
    "tabs\tand\ttabs\t\tdouble",
    " \t \n mixed  whitespace \r\n end",
    "   ",
    " ",
    "I'm sure it's what we'd've done; they'll say they're right and I've got 'em.",
    "DON'T SHOUT, IT'S LOUD",
    "café naïve résumé Zürich São Paulo Ångström déjà vu",
    "日本語のテキスト、中文文本，한국어 텍스트",
    "Привет мир, Γειά σου Κόσμε, مرحبا بالعالم, שלום עולם",
    "I love 🦀 and 🐍! 👍🏽 👨‍👩‍👧 ❤️",
    "1234567890",
    "pi is 3.14159, e is 2.71828 and 1,000,000 people in 2024",
    "½ ² ٣ Ⅻ",
    "Hello!!! ... ??? (parens) [brackets] {braces} <angle> @#$%^&*",
    "a+b=c; x->y && z||w != q",
    "def f(x):\n    return x**2  # square\n",
    "a\u00a0b\u3000c\u2009d\u2028e",
    "Supercalifragilisticexpialidocious antidisestablishmentarianism",
    "<|im_start|>user\nWhere is the dog?<|im_end|>\n<|im_start|>assistant\n",
    "text<|endoftext|>more text",
    "<|im_start|>system",
    "un<|im_end|>finished <|im_end",
    "The dog is 2.5m away, to the left.",
]

CHAT_TEMPLATE_SMOLLM = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful AI assistant.<|im_end|>\\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def corpus_lines():
    return [l for l in CORPUS.split("\n") if l.strip()] * 4


# --------------------------------------------------------------- tiny SPM ---

def build_spm():
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus_lines()), model_writer=buf, model_type="bpe", vocab_size=420,
        byte_fallback=True, normalization_rule_name="identity", remove_extra_whitespaces=False,
        add_dummy_prefix=True, split_digits=True, character_coverage=0.995, hard_vocab_limit=False,
        user_defined_symbols=["<|im_start|>", "<|im_end|>"], unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        minloglevel=2)
    sp = spm.SentencePieceProcessor(model_proto=buf.getvalue())
    return sp


def spm_types(sp):
    types = []
    for i in range(sp.get_piece_size()):
        if sp.is_unknown(i):
            types.append(2)
        elif sp.is_control(i):
            types.append(3)
        elif sp.is_byte(i):
            types.append(6)
        elif sp.is_unused(i):
            types.append(5)
        elif sp.IsUserDefined(i) if hasattr(sp, "IsUserDefined") else False:
            types.append(4)
        else:
            types.append(1)
    return types


def write_spm_gguf(sp, path):
    n = sp.get_piece_size()
    types = spm_types(sp)
    for i in range(n):  # user-defined symbols, by name (older sentencepiece lacks IsUserDefined)
        if sp.id_to_piece(i) in ("<|im_start|>", "<|im_end|>"):
            types[i] = 4
    w = gguf.GGUFWriter(path, arch="llama")
    w.add_context_length(64)
    w.add_embedding_length(8)
    w.add_block_count(1)
    w.add_feed_forward_length(16)
    w.add_head_count(2)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model("llama")
    w.add_token_list([sp.id_to_piece(i) for i in range(n)])
    w.add_token_scores([sp.get_score(i) for i in range(n)])
    w.add_token_types(types)
    w.add_bos_token_id(sp.bos_id())
    w.add_eos_token_id(sp.eos_id())
    w.add_unk_token_id(sp.unk_id())
    w.add_add_bos_token(True)
    w.add_add_space_prefix(True)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return types


def write_spm_json(sp, types, path):
    """HF tokenizer.json the way transformers converts a SentencePiece BPE
    model: every split of a piece into two pieces is a merge, ranked by the
    piece's score (then by the left part's id)."""
    n = sp.get_piece_size()
    vocab = {sp.id_to_piece(i): i for i in range(n)}
    merges = []
    for piece, pid in vocab.items():
        if types[pid] != 1:
            continue
        local = []
        for k in range(1, len(piece)):
            l, r = piece[:k], piece[k:]
            if l in vocab and r in vocab and types[vocab[l]] == 1 and types[vocab[r]] in (1,):
                local.append((vocab[l], vocab[r], l, r))
        local.sort()
        for li, ri, l, r in local:
            merges.append((sp.get_score(pid), pid, li, ri, l, r))
    merges.sort(key=lambda m: (-m[0], m[1], m[2], m[3]))
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[(m[4], m[5]) for m in merges], unk_token="<unk>",
                               fuse_unk=True, byte_fallback=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
    tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])
    specials = [AddedToken(sp.id_to_piece(i), special=True, normalized=False) for i in range(n) if types[i] in (2, 3)]
    users = [AddedToken(sp.id_to_piece(i), special=False, normalized=False) for i in range(n) if types[i] == 4]
    tok.add_special_tokens(specials)
    tok.add_tokens(users)
    tok.save(path)
    return Tokenizer.from_file(path)


# ---------------------------------------------------------- tiny byte BPE ---

def bytelevel_pre():
    return pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                    pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])


def build_bpe(json_path, cfg_path):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = bytelevel_pre()
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=700, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(corpus_lines(), trainer)
    tok.save(json_path)
    with open(cfg_path, "w") as f:
        json.dump({"bos_token": "<|im_start|>", "eos_token": {"content": "<|im_end|>"}, "add_bos_token": False,
                   "chat_template": CHAT_TEMPLATE_SMOLLM}, f, indent=1)
    return Tokenizer.from_file(json_path)


def bpe_merges(tok):
    merges = json.loads(tok.to_str())["model"]["merges"]
    return [m if isinstance(m, str) else " ".join(m) for m in merges]


def write_bpe_gguf(tok, path):
    vocab = tok.get_vocab()
    n = len(vocab)
    tokens = [None] * n
    for t, i in vocab.items():
        tokens[i] = t
    specials = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"}
    w = gguf.GGUFWriter(path, arch="llama")
    w.add_context_length(64)
    w.add_embedding_length(8)
    w.add_block_count(1)
    w.add_feed_forward_length(16)
    w.add_head_count(2)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(tokens)
    w.add_token_types([3 if t in specials else 1 for t in tokens])
    w.add_token_merges(bpe_merges(tok))
    w.add_bos_token_id(vocab["<|im_start|>"])
    w.add_eos_token_id(vocab["<|im_end|>"])
    w.add_add_bos_token(False)
    w.add_chat_template(CHAT_TEMPLATE_SMOLLM)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# ---------------------------------------------------------------- SmolLM2 ---

def field_strings(r, key):
    f = r.fields[key]
    return [bytes(f.parts[i]).decode("utf-8") for i in f.data]


def smollm_reference(path):
    r = gguf.GGUFReader(path)
    tokens = field_strings(r, "tokenizer.ggml.tokens")
    merges = [tuple(m.split(" ", 1)) for m in field_strings(r, "tokenizer.ggml.merges")]
    f = r.fields["tokenizer.ggml.token_type"]
    types = [int(f.parts[i][0]) for i in f.data]
    vocab = {t: i for i, t in enumerate(tokens)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = bytelevel_pre()
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(tokens[i], special=True, normalized=False)
                            for i in range(len(tokens)) if types[i] == 3])
    return tok


def llama_cpp_tokenize(path, strings):
    try:
        import llama_cpp
    except ImportError:
        return None
    llm = llama_cpp.Llama(model_path=path, vocab_only=True, verbose=False)
    return [llm.tokenize(s.encode("utf-8"), add_bos=False, special=True) for s in strings]


# ------------------------------------------------------------------ output ---

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


def emit(f, name, cases):
    """cases: list of (text, parse_special, ids[, hf_json_same])"""
    cases = [c if len(c) == 4 else c + (1,) for c in cases]
    for k, (text, special, ids, same) in enumerate(cases):
        f.write("static const int32_t %s_%d[] = {%s};\n" % (name, k, ", ".join(map(str, ids)) if ids else "-1"))
    f.write("static const tok_ref_case %s[] = {\n" % name)
    for k, (text, special, ids, same) in enumerate(cases):
        f.write("    {%s, %d, %d, %s_%d, %d, %d},\n" % (c_string(text), len(text.encode("utf-8")), special, name, k,
                                                        len(ids), same))
    f.write("};\n\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    args = ap.parse_args()
    os.makedirs(DATA, exist_ok=True)
    problems = 0

    # tiny SentencePiece model
    sp = build_spm()
    spm_gguf = os.path.join(DATA, "tiny_spm.gguf")
    types = write_spm_gguf(sp, spm_gguf)
    hf_spm = write_spm_json(sp, types, os.path.join(DATA, "tiny_spm_tokenizer.json"))
    spm_cases = []
    for s in TEST_STRINGS:
        ids = sp.encode(s)
        hf_ids = hf_spm.encode(s, add_special_tokens=False).ids
        spm_cases.append((s, 1, ids, int(hf_ids == ids)))
        if hf_ids != ids:
            print("note: HF tokenizers on tiny_spm_tokenizer.json differs from sentencepiece for %r:\n  spm %s\n  hf  %s"
                  % (s, ids, hf_ids))
    # control tokens are plain text for sentencepiece: checked with parse_special = 0
    for s in ["<s>Hello</s>", "a <unk> b"]:
        spm_cases.append((s, 0, sp.encode(s), 0))

    # tiny byte-level BPE
    bpe = build_bpe(os.path.join(DATA, "tiny_bpe_tokenizer.json"), os.path.join(DATA, "tiny_bpe_tokenizer_config.json"))
    write_bpe_gguf(bpe, os.path.join(DATA, "tiny_bpe.gguf"))
    bpe_cases = [(s, 1, bpe.encode(s, add_special_tokens=False).ids) for s in TEST_STRINGS]

    # SmolLM2
    smol_cases = []
    if os.path.exists(args.model):
        ref = smollm_reference(args.model)
        smol_cases = [(s, 1, ref.encode(s, add_special_tokens=False).ids) for s in TEST_STRINGS]
        lc = llama_cpp_tokenize(args.model, TEST_STRINGS)
        if lc is None:
            print("llama-cpp-python not installed: SmolLM2 references from HF tokenizers only")
        else:
            agree = sum(1 for (s, _, ids), l in zip(smol_cases, lc) if ids == l)
            print("SmolLM2: llama.cpp agrees with HF tokenizers on %d/%d strings" % (agree, len(lc)))
            for (s, _, ids), l in zip(smol_cases, lc):
                if ids != l:
                    print("  differs on %r:\n    hf  %s\n    cpp %s" % (s, ids, l))
    else:
        print("no %s: SmolLM2 references not regenerated" % args.model, file=sys.stderr)
        return 1

    with open(os.path.join(HERE, "tok_refs.h"), "w") as f:
        f.write("/* Generated by tests/llm/make_tok_refs.py: expected token ids. Do not edit. */\n")
        f.write("#ifndef BP_TOK_REFS_H\n#define BP_TOK_REFS_H\n\n#include <stddef.h>\n#include <stdint.h>\n\n")
        f.write("typedef struct tok_ref_case {\n    const char *text;\n    size_t len;\n    int32_t parse_special;\n"
                "    const int32_t *ids;\n    int32_t n_ids;\n"
                "    int32_t hf_json_same; /* 1: HF tokenizers on the tokenizer.json gives the same ids */\n"
                "} tok_ref_case;\n\n")
        f.write("/* tiny_spm.gguf / tiny_spm_tokenizer.json: sentencepiece %s encode */\n" % spm.__version__)
        emit(f, "tok_refs_spm", spm_cases)
        import tokenizers
        f.write("/* tiny_bpe.gguf / tiny_bpe_tokenizer.json: HF tokenizers %s encode */\n" % tokenizers.__version__)
        emit(f, "tok_refs_bpe", bpe_cases)
        f.write("/* SmolLM2-135M-Instruct.Q4_1.gguf: HF tokenizers %s from the GGUF's vocab/merges */\n"
                % tokenizers.__version__)
        emit(f, "tok_refs_smollm", smol_cases)
        f.write("#endif\n")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
