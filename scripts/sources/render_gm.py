"""Rendered instrument recordings from the Fluid R3 GM sound font
(fluid-soundfont-gm, MIT) with fluidsynth, dry (reverb and chorus off), at
32 kHz: several short phrases per General MIDI program, each a different
register and rhythm. These are sample-based renderings, not field recordings:
their rows carry package fluid-soundfont-gm and a source_path
"FluidR3_GM.sf2:program-NNN/phrase-K" so they can be told apart.

The MIDI files are written here (standard library only); fluidsynth must be
on PATH (Debian: apt-get install fluidsynth), otherwise the renderings are
skipped with that reason.
"""
import os
import shutil
import struct
import subprocess

RATE = 32000
PHRASES = 6

# GM program (0-based) → (AudioSet display name, lowest note, highest note)
PROGRAMS = {
    0: ("Piano", 36, 96), 4: ("Electric piano", 36, 96), 6: ("Harpsichord", 41, 89),
    9: ("Glockenspiel", 79, 105), 11: ("Vibraphone", 53, 89), 12: ("Marimba, xylophone", 45, 96),
    13: ("Marimba, xylophone", 65, 105), 14: ("Tubular bells", 60, 77), 16: ("Hammond organ", 36, 96),
    19: ("Organ", 36, 96), 21: ("Accordion", 53, 89), 22: ("Harmonica", 60, 84),
    24: ("Acoustic guitar", 40, 76), 25: ("Acoustic guitar", 40, 76), 27: ("Electric guitar", 40, 84),
    29: ("Electric guitar", 40, 84), 32: ("Double bass", 28, 55), 40: ("Violin, fiddle", 55, 96),
    42: ("Cello", 36, 72), 43: ("Double bass", 28, 55), 46: ("Harp", 36, 96), 47: ("Timpani", 40, 55),
    48: ("String section", 36, 84), 56: ("Trumpet", 55, 82), 57: ("Trombone", 40, 72),
    58: ("Brass instrument", 28, 58), 60: ("French horn", 41, 77), 65: ("Saxophone", 49, 81),
    66: ("Saxophone", 44, 76), 68: ("Oboe", 58, 91), 70: ("Bassoon", 34, 72), 71: ("Clarinet", 50, 91),
    73: ("Flute", 60, 96), 104: ("Sitar", 48, 77), 105: ("Banjo", 48, 84), 109: ("Bagpipes", 58, 77),
    110: ("Violin, fiddle", 55, 88), 114: ("Steelpan", 60, 84),
}

SCALES = [(0, 2, 4, 5, 7, 9, 11), (0, 2, 3, 5, 7, 8, 10), (0, 2, 4, 7, 9), (0, 3, 5, 7, 10)]
RHYTHMS = [(1, 1, 1, 1, 2, 1, 1, 4), (2, 1, 1, 2, 2, 4), (1, 1, 2, 1, 1, 2, 4), (3, 1, 2, 2, 4),
           (1, 1, 1, 1, 1, 1, 1, 1, 4), (2, 2, 2, 2, 4)]


def _vlq(n):
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def phrase_notes(program, k):
    """(note, beats) pairs of phrase k of a program: deterministic."""
    _name, lo, hi = PROGRAMS[program]
    scale = SCALES[(program + k) % len(SCALES)]
    rhythm = RHYTHMS[k % len(RHYTHMS)]
    span = max(hi - lo - 12, 1)
    base = lo + (span * k) // max(PHRASES - 1, 1)
    notes = []
    step = 0
    for i, beats in enumerate(rhythm):
        # a contour that rises then falls, different per phrase
        step += (1 if (i + k) % 3 else -1) * (1 + (program + i) % 2)
        deg = step % len(scale)
        octv = step // len(scale)
        note = min(max(base + 12 * octv + scale[deg], lo), hi)
        notes.append((note, beats))
    return notes


def midi_bytes(program, k, tempo_bpm=100, ppq=480):
    """A format-0 MIDI file: program change, then the phrase on channel 0."""
    ev = bytearray()
    ev += _vlq(0) + b"\xFF\x51\x03" + struct.pack(">I", 60000000 // tempo_bpm)[1:]
    ev += _vlq(0) + bytes([0xC0, program])
    vel = 70 + (k * 11) % 40
    for note, beats in phrase_notes(program, k):
        ticks = beats * ppq // 2  # a beat unit is an eighth note
        ev += _vlq(0) + bytes([0x90, note, vel])
        ev += _vlq(ticks) + bytes([0x80, note, 0])
    ev += _vlq(ppq * 2) + b"\xFF\x2F\x00"  # let the last note ring
    return b"MThd" + struct.pack(">IHHH", 6, 0, 1, ppq) + b"MTrk" + struct.pack(">I", len(ev)) + bytes(ev)


def render_all(sf2, out_dir, fluidsynth=None):
    """Render every phrase not rendered yet. Yields (program, k, label, wav path or None, reason).
    `fluidsynth`: the executable (None: look it up on PATH; "": treat as missing)."""
    exe = shutil.which("fluidsynth") if fluidsynth is None else fluidsynth
    for program in sorted(PROGRAMS):
        label = PROGRAMS[program][0]
        for k in range(PHRASES):
            wav = os.path.join(out_dir, f"program-{program:03d}", f"phrase-{k}.wav")
            if os.path.isfile(wav):
                yield program, k, label, wav, None
                continue
            if not exe:
                yield program, k, label, None, "fluidsynth is not installed (apt-get install fluidsynth)"
                continue
            os.makedirs(os.path.dirname(wav), exist_ok=True)
            mid = wav[:-4] + ".mid"
            with open(mid, "wb") as f:
                f.write(midi_bytes(program, k))
            tmp = wav[:-4] + ".partial.wav"
            p = subprocess.run([exe, "-ni", "-q", "-g", "0.6", "-R", "0", "-C", "0", "-r", str(RATE), "-F", tmp,
                                sf2, mid], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            if p.returncode != 0 or not os.path.isfile(tmp) or os.path.getsize(tmp) < 1000:
                yield program, k, label, None, f"fluidsynth failed: {(p.stderr or p.stdout).strip()[-200:]}"
                continue
            os.replace(tmp, wav)
            yield program, k, label, wav, None
