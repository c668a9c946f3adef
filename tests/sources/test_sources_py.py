#!/usr/bin/env python3
"""Tests of scripts/sources/ (Python 3 standard library only, no network):
the Qt .rcc reader, the curation rules, DEP-5 licence matching and the staging
of a package's audio (plain files, zip members, .rcc resources, add rules)."""
import io
import os
import shutil
import struct
import sys
import tempfile
import unittest
import wave
import zipfile
import zlib

SRC = os.environ.get("BP_SOURCE_DIR") or os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(SRC, "scripts", "sources"))

import curate  # noqa: E402
import fetch  # noqa: E402
import rcc  # noqa: E402
import render_gm  # noqa: E402
import render_tts  # noqa: E402


def wav_bytes(n=800, rate=16000):
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(struct.pack("<h", (i * 97) % 2000 - 1000) for i in range(n)))
    return buf.getvalue()


class RccTest(unittest.TestCase):
    FILES = {"a.txt": b"hello", "snd/x/beep.wav": b"RIFF....WAVE" * 50, "snd/y.ogg": b"OggS" + bytes(range(200))}

    def test_roundtrip_all_versions(self):
        for version in (1, 2, 3):
            data = rcc.build_rcc(self.FILES, version=version, compress={"snd/x/beep.wav"})
            r = rcc.RccFile(data, f"v{version}")
            self.assertEqual(r.version, version)
            self.assertEqual([e.path for e in r.entries], sorted(self.FILES))
            for e in r.entries:
                self.assertEqual(r.read(e), self.FILES[e.path])
            comp = {e.path: e.compression for e in r.entries}
            self.assertEqual(comp["snd/x/beep.wav"], "zlib")
            self.assertEqual(comp["a.txt"], "none")

    def test_format_layout(self):
        """The documented layout: magic, big-endian offsets, 22-byte v2 nodes."""
        data = rcc.build_rcc({"f": b"xyz"}, version=2)
        self.assertEqual(data[:4], b"qres")
        version, tree, dat, names = struct.unpack(">IIII", data[4:20])
        self.assertEqual((version, tree), (2, 20))
        self.assertEqual(dat - tree, 2 * 22)  # root + one file
        name_off, flags, count, first = struct.unpack_from(">IHII", data, tree)
        self.assertEqual((flags, count, first), (rcc.FLAG_DIR, 1, 1))
        self.assertEqual(struct.unpack_from(">I", data, dat)[0], 3)
        self.assertEqual(data[dat + 4:dat + 7], b"xyz")
        self.assertEqual(data[names + 6:names + 8], "f".encode("utf-16-be"))

    def corrupt(self, data, msg):
        with self.assertRaises(rcc.RccError) as cm:
            r = rcc.RccFile(data, "bad.rcc")
            for e in r.entries:
                r.read(e)
        self.assertIn(msg, str(cm.exception))

    def test_errors(self):
        good = rcc.build_rcc(self.FILES, version=2, compress={"snd/y.ogg"})
        self.corrupt(b"qrez" + good[4:], "no 'qres' magic")
        self.corrupt(good[:12], "no 'qres' magic")
        self.corrupt(good[:4] + struct.pack(">I", 9) + good[8:], "unsupported rcc format version 9")
        _, tree, dat, names = struct.unpack(">IIII", good[4:20])
        # root directory claims children past the tree
        bad = bytearray(good)
        struct.pack_into(">II", bad, tree + 6, 1000, 1)
        self.corrupt(bytes(bad), "outside the tree")
        # a directory that lists itself as its child: a cycle
        bad = bytearray(good)
        nodes = rcc.RccFile(good).entries  # noqa: F841
        # node 1 is the first child of the root; make it a directory whose child is node 1
        struct.pack_into(">IHII", bad, tree + 22, 0, rcc.FLAG_DIR, 1, 1)
        self.corrupt(bytes(bad), "reached twice")
        # data size past the end of the file
        bad = bytearray(good)
        struct.pack_into(">I", bad, dat, 10 ** 8)
        self.corrupt(bytes(bad), "outside the file")
        # truncated file
        self.corrupt(good[:names + 3], "outside the file")

    def test_bad_zlib_and_zstd(self):
        data = bytearray(rcc.build_rcc({"z": b"payload" * 20}, version=2, compress={"z"}))
        _, tree, dat, names = struct.unpack(">IIII", data[4:20])
        size = struct.unpack_from(">I", data, dat)[0]
        # announced size wrong
        bad = bytearray(data)
        struct.pack_into(">I", bad, dat + 4, 5)
        self.corrupt(bytes(bad), "announced")
        # garbage stream
        bad = bytearray(data)
        bad[dat + 8:dat + 4 + size] = b"\x00" * (size - 4)
        self.corrupt(bytes(bad), "corrupt zlib data")
        # zstd flag: reported as unsupported
        bad = bytearray(data)
        struct.pack_into(">H", bad, tree + 22 + 4, rcc.FLAG_ZSTD)
        self.corrupt(bytes(bad), "zstd")
        # the untouched image decodes
        r = rcc.RccFile(bytes(data))
        self.assertEqual(r.read(r.entries[0]), b"payload" * 20)
        self.assertEqual(zlib.decompress(bytes(data[dat + 8:dat + 4 + size])), b"payload" * 20)


class CurateTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="bp_curate_")
        with open(os.path.join(self.dir, "audioset_classes.tsv"), "w") as f:
            f.write("# test\nmid\tname\trestrictions\n/m/dog\tDog\t\n/m/cat\tCat\t\n/m/spk\tSpeech\t\n"
                    "/m/syn\tSpeech synthesizer\t\n/m/drm\tDrum\t\n/m/cym\tCymbal\t\n")

    def tearDown(self):
        shutil.rmtree(self.dir)

    def rules(self, text):
        with open(os.path.join(self.dir, "rules.tsv"), "w") as f:
            f.write("package\tpath\tfrom\taction\tlabel\treason\n" + text)
        return curate.load_all(self.dir)

    def test_rules(self):
        classes, rules = self.rules(
            "espeak-data\t*\t*\trelabel\tSpeech synthesizer\tformant synthesis, not a person\n"
            "kit\t*/Bell-*\tDrum\trelabel\tCymbal\tride bell\n"
            "kit\t*/Bell-*\t*\tdrop\t\tnever reached for Drum rows\n"
            "kit\t*/junk*\t*\tdrop\t\tjunk\n"
            "pets\t*/dog.ogg\t*\tkeep\t\tchecked\n"
            "words\t/usr/share/words/*/*.ogg\t*\tadd\tSpeech\tspoken words\n")
        first = [
            {"class": "Speech", "package": "espeak-data", "path": "/usr/share/x/hello.wav"},
            {"class": "Drum", "package": "kit", "path": "/k/Bell-Hard.wav"},
            {"class": "Cymbal", "package": "kit", "path": "/k/Bell-Soft.wav"},
            {"class": "Drum", "package": "kit", "path": "/k/junk1.wav"},
            {"class": "Dog", "package": "pets", "path": "/p/dog.ogg"},
            {"class": "Cat", "package": "pets", "path": "/p/cat.ogg"},
            {"class": "UNMAPPED", "package": "pets", "path": "/p/what.ogg"},
            {"class": "Pickaxe / mining (Tools)", "package": "pets", "path": "/p/pick.ogg"},
        ]
        out = curate.curate(first, rules, classes)
        got = [(r["label"], r["action"]) for r in out]
        self.assertEqual(got, [("Speech synthesizer", "relabel"), ("Cymbal", "relabel"), ("", "drop"), ("", "drop"),
                               ("Dog", "keep"), ("Cat", "keep"), ("", "drop"), ("", "drop")])
        self.assertEqual(out[0]["mid"], "/m/syn")
        self.assertEqual(out[1]["rule"], "3")  # line of rules.tsv (after the header)
        self.assertIn("not an AudioSet class", out[6]["reason"])
        self.assertEqual(out[5]["rule"], "")
        adds = rules.add_rules("words")
        self.assertEqual(len(adds), 1)
        self.assertEqual(rules.add_rules("pets"), [])
        text = curate.format_labels(out)
        self.assertIn("espeak-data\t/usr/share/x/hello.wav\tSpeech\tSpeech synthesizer\t/m/syn\trelabel\t2\t", text)

    def test_bad_rules(self):
        with self.assertRaises(curate.CurationError) as cm:
            self.rules("p\t*\t*\trelabel\tDoggo\twhy\n")
        self.assertIn("'Doggo' is not an AudioSet display name", str(cm.exception))
        with self.assertRaises(curate.CurationError):
            self.rules("p\t*\t*\tpaint\tDog\twhy\n")
        with self.assertRaises(curate.CurationError) as cm:
            self.rules("p\t*\t*\tdrop\t\t\n")
        self.assertIn("needs a reason", str(cm.exception))
        classes, rules = self.rules("p\t*\t*\tkeep\t\tok\n")
        with self.assertRaises(curate.CurationError):
            curate.curate([{"class": "UNMAPPED", "package": "p", "path": "/x"}], rules, classes)

    def test_committed_labels_are_current(self):
        """data/curation/labels.tsv is what the committed rules give."""
        self.assertEqual(curate.main(["--check", "--curation", os.path.join(SRC, "data", "curation")]), 0)

    def test_committed_labels_rules(self):
        """Spot checks of the committed curation (the rules the docs promise)."""
        rows = curate.read_tsv(os.path.join(SRC, "data", "curation", "labels.tsv"), curate.LABELS_HEADER)
        by = {(r["package"], r["source_path"]): r for r in rows}
        classes = curate.load_classes(os.path.join(SRC, "data", "curation", "audioset_classes.tsv"))
        for r in rows:
            if r["label"]:
                self.assertIn(r["label"], classes)
                self.assertEqual(r["mid"], classes[r["label"]])
            self.assertTrue(r["reason"])
        hand = [r for r in rows if "Gimme A Hand" in r["source_path"] and "Maraca" in r["source_path"]]
        self.assertTrue(hand and all(r["label"] == "Maraca" for r in hand))
        self.assertFalse([r for r in rows if r["label"] == "Synthesizer" and "/waveforms/" in r["source_path"]])
        self.assertFalse([r for r in rows if r["package"] == "asterisk-core-sounds-en-wav" and r["label"]])
        self.assertTrue(all(r["label"] in ("", "Drum machine") for r in rows if "TR808" in r["source_path"]))


class Dep5Test(unittest.TestCase):
    TEXT = ("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
            "Upstream-Name: x\n\n"
            "Files: *\nCopyright: a\nLicense: GPL-3+\n\n"
            "Files: src/sounds/*_LA.ogg\n src/sounds/other.wav\nLicense: free-art\n\n"
            "Files: etc/samples/bd.flac\nLicense: CC0\n\n"
            "Files: debian/*\nLicense: GPL-2+\n\n"
            "License: GPL-3+\n text\n")

    def test_parse_and_match(self):
        paras = fetch.parse_dep5(self.TEXT)
        self.assertEqual(len(paras), 4)
        lic = fetch.Licences([{"package": "p", "path": "*/override/*", "license": "MIT"}], {"p": "DEFAULT"})
        lic.dep5["p"] = paras
        self.assertEqual(lic.of("p", "/usr/share/p/src/sounds/bird_LA.ogg"), "free-art")
        self.assertEqual(lic.of("p", "a.rcc:gcompris/src/sounds/other.wav"), "free-art")
        self.assertEqual(lic.of("p", "/usr/share/p/samples/bd.flac"), "CC0")  # literal, last two components
        self.assertEqual(lic.of("p", "/usr/share/p/debian/x.wav"), "GPL-3+")  # debian/* is ignored
        self.assertEqual(lic.of("p", "/usr/share/p/override/x.wav"), "MIT")
        self.assertIsNone(fetch.parse_dep5("This package was debianized by ...\n"))
        lic.dep5["q"] = None
        self.assertEqual(lic.of("q", "/x"), "unknown")


class StageTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="bp_stage_")

    def tearDown(self):
        shutil.rmtree(self.dir)

    def test_stage_package(self):
        root = os.path.join(self.dir, "pkgs", "p")
        os.makedirs(os.path.join(root, "usr/share/p/words/en"))
        os.makedirs(os.path.join(root, "usr/share/p/rcc"))
        with open(os.path.join(root, "usr/share/p/a.wav"), "wb") as f:
            f.write(wav_bytes())
        with open(os.path.join(root, "usr/share/p/words/en/hello.wav"), "wb") as f:
            f.write(wav_bytes(400))
        with zipfile.ZipFile(os.path.join(root, "usr/share/p/public.zip"), "w") as z:
            z.writestr("audio/cow_1.wav", wav_bytes(300))
        with open(os.path.join(root, "usr/share/p/rcc/farm.rcc"), "wb") as f:
            f.write(rcc.build_rcc({"res/pig.wav": wav_bytes(500)}, version=3, compress={"res/pig.wav"}))
        listed = [
            {"source_path": "/usr/share/p/a.wav", "label": "Dog"},
            {"source_path": "public.zip:audio/cow_1.wav", "label": "Cattle, bovinae"},
            {"source_path": "farm.rcc:res/pig.wav", "label": "Pig"},
            {"source_path": "/usr/share/p/gone.wav", "label": "Dog"},
            {"source_path": "public.zip:audio/missing.wav", "label": "Dog"},
            {"source_path": "public.zip:../escape.wav", "label": "Dog"},
        ]
        add = [{"path": "/usr/share/p/words/*/*.wav", "label": "Speech"}]
        stage_dir = os.path.join(self.dir, "build")
        os.makedirs(stage_dir)
        lic = fetch.Licences([], {"p": "GPL-2+"})
        rows, skipped = [], []
        arcs = fetch.Archives(os.path.join(self.dir, "extract"))
        rep = fetch.Reporter(quiet=True)
        ok, total = fetch.stage_package("p", root, listed, add, arcs, fetch.WavPack(self.dir), lic,
                                        {"Speech": "repeat"}, stage_dir, rep, rows, skipped)
        arcs.close()
        self.assertEqual((ok, total), (4, 7))
        got = {r["source_path"]: r for r in rows}
        self.assertEqual(set(got), {"/usr/share/p/a.wav", "public.zip:audio/cow_1.wav", "farm.rcc:res/pig.wav",
                                    "/usr/share/p/words/en/hello.wav"})
        self.assertEqual(got["/usr/share/p/words/en/hello.wav"]["label"], "Speech")
        for r in rows:
            path = os.path.join(stage_dir, r["input"])
            self.assertTrue(os.path.isfile(path), path)
            self.assertEqual(r["license"], "GPL-2+")
        with open(os.path.join(stage_dir, got["farm.rcc:res/pig.wav"]["input"]), "rb") as f:
            self.assertEqual(f.read(), wav_bytes(500))
        reasons = {s[0]: s[3] for s in skipped}
        self.assertIn("not in this version of the package", reasons["/usr/share/p/gone.wav"])
        self.assertIn("is not in public.zip", reasons["public.zip:audio/missing.wav"])
        self.assertIn("unsafe member name", reasons["public.zip:../escape.wav"])

    def test_wavpack_missing_tool(self):
        path = os.path.join(self.dir, "x.wav")
        with open(path, "wb") as f:
            f.write(b"wvpk" + bytes(60))
        self.assertTrue(fetch.WavPack.is_wavpack(path))
        wp = fetch.WavPack(os.path.join(self.dir, "nothing"))
        if wp.exe is None:
            with self.assertRaises(fetch.FetchError) as cm:
                wp.decode(path)
            self.assertIn("wvunpack", str(cm.exception))

    def test_select_packages(self):
        pk = [{"package": "a", "tier": "core"}, {"package": "b", "tier": "heavy"}, {"package": "c", "tier": "extra"},
              {"package": "wavpack", "tier": "tool"}]
        self.assertEqual(fetch.select_packages(pk, False, None), ["a"])
        self.assertEqual(fetch.select_packages(pk, True, None), ["a", "b", "c"])
        self.assertEqual(fetch.select_packages(pk, False, "c"), ["c"])
        with self.assertRaises(fetch.FetchError):
            fetch.select_packages(pk, False, "zzz")


class RenderTtsTest(unittest.TestCase):
    def test_items_and_label(self):
        its = list(render_tts.items())
        self.assertEqual(len(its), len(render_tts.VARIANTS) * sum(len(v) for v in render_tts.SENTENCES.values()))
        self.assertEqual(len({(lang, v, i) for lang, v, i, _t in its}), len(its))
        self.assertEqual(render_tts.LABEL, "Speech synthesizer")  # synthetic speech is never "Speech"
        with tempfile.TemporaryDirectory() as d:
            out = list(render_tts.render_all(d, espeak=""))
        self.assertTrue(all(w is None and "espeak-ng is not installed" in why for _n, w, why in out))


class RenderGmTest(unittest.TestCase):
    def test_midi_files(self):
        seen = set()
        classes = curate.load_classes(os.path.join(SRC, "data", "curation", "audioset_classes.tsv"))
        for program, (label, lo, hi) in render_gm.PROGRAMS.items():
            self.assertIn(label, classes)
            for k in range(render_gm.PHRASES):
                notes = render_gm.phrase_notes(program, k)
                self.assertTrue(all(lo <= n <= hi for n, _ in notes), (program, k, notes))
                m = render_gm.midi_bytes(program, k)
                self.assertEqual(m[:4], b"MThd")
                self.assertEqual(struct.unpack(">IHHH", m[4:14]), (6, 0, 1, 480))
                self.assertEqual(m[14:18], b"MTrk")
                self.assertEqual(struct.unpack(">I", m[18:22])[0], len(m) - 22)
                self.assertIn(bytes([0xC0, program]), m)
                self.assertTrue(m.endswith(b"\xFF\x2F\x00"))
                seen.add(m)
        self.assertEqual(len(seen), len(render_gm.PROGRAMS) * render_gm.PHRASES)  # every phrase differs

    def test_missing_fluidsynth(self):
        with tempfile.TemporaryDirectory() as d:
            out = list(render_gm.render_all("/nonexistent.sf2", d, fluidsynth=""))
        self.assertEqual(len(out), len(render_gm.PROGRAMS) * render_gm.PHRASES)
        self.assertTrue(all(w is None and "fluidsynth is not installed" in why for _p, _k, _l, w, why in out))


if __name__ == "__main__":
    unittest.main(verbosity=1)
