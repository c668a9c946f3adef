"""Synthetic speech from espeak-ng (formant synthesis; voice data from Debian's
espeak-ng-data, GPL-3+), labelled "Speech synthesizer" — never "Speech": it is
not a person speaking. A fixed list of short sentences per language, spoken
with several voice variants; written as WAV by `espeak-ng -w`.

espeak-ng must be on PATH (Debian: apt-get install espeak-ng), otherwise the
renderings are skipped with that reason.
"""
import os
import shutil
import subprocess

LABEL = "Speech synthesizer"

# language → sentences (our own text)
SENTENCES = {
    "en": ["The kettle is boiling in the kitchen.", "Please close the door when you leave.",
           "Seven birds are sitting on the fence.", "It will rain again tomorrow morning."],
    "de": ["Der Zug kommt heute etwas später.", "Bitte mach das Fenster zu."],
    "fr": ["Le chat dort sur le canapé.", "Nous partons demain matin."],
    "es": ["El perro corre por el parque.", "Hace mucho calor esta tarde."],
    "it": ["La cena è pronta in tavola.", "Domani andiamo al mare."],
}
# voice variants applied to each language (espeak-ng "+variant")
VARIANTS = ["m1", "f2", "m3", "f4"]


def items():
    """(language, variant, sentence index, text), deterministic order."""
    for lang in sorted(SENTENCES):
        for v in VARIANTS:
            for i, text in enumerate(SENTENCES[lang]):
                yield lang, v, i, text


def render_all(out_dir, espeak=None):
    """Yield (source name, wav path or None, reason). `espeak`: the executable
    (None: look it up on PATH; "": treat as missing)."""
    exe = shutil.which("espeak-ng") if espeak is None else espeak
    for lang, v, i, text in items():
        name = f"{lang}+{v}/sentence-{i}"
        wav = os.path.join(out_dir, lang + "_" + v, f"sentence-{i}.wav")
        if os.path.isfile(wav):
            yield name, wav, None
            continue
        if not exe:
            yield name, None, "espeak-ng is not installed (apt-get install espeak-ng)"
            continue
        os.makedirs(os.path.dirname(wav), exist_ok=True)
        tmp = wav[:-4] + ".partial.wav"
        p = subprocess.run([exe, "-v", f"{lang}+{v}", "-s", "160", "-w", tmp, text], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
        if p.returncode != 0 or not os.path.isfile(tmp) or os.path.getsize(tmp) < 1000:
            yield name, None, f"espeak-ng failed: {(p.stderr or p.stdout).strip()[-200:]}"
            continue
        os.replace(tmp, wav)
        yield name, wav, None
