#!/usr/bin/env python3
"""Download and extract the audio of the source-corpus packages, and write the
stage list that `batpipe sources build` converts (docs/sources.md).

Normally run by `batpipe sources fetch`, which then converts and splits:

  fetch.py --dir data/sources [--heavy] [--packages a,b] [--offline] [--stage FILE]

Steps, each resumable (finished work is recognised and skipped):
  1. `apt-get download` each package into DIR/debs/ (no root needed);
  2. `dpkg-deb -x` into DIR/pkgs/<package>/ (a marker file records the .deb);
  3. for every file the curated table (data/curation/labels.tsv) labels, and
     every file an `add` rule of data/curation/rules.tsv matches: locate it,
     extracting zip members (0ad's public.zip, grandorgue's .orgue) and Qt
     .rcc resources (gcompris) into DIR/extract/, and decoding WavPack with
     wvunpack (from PATH, or from the downloaded wavpack package);
  4. write DIR/build/stage.tsv (input, label, package, license, source_path,
     placement) and DIR/build/stage-skipped.tsv; copy each package's
     debian/copyright to DIR/licenses/.

Every skipped file is reported with the reason. Python 3 standard library only.
"""
import argparse
import fnmatch
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import curate  # noqa: E402
import rcc  # noqa: E402
import render_gm  # noqa: E402
import render_tts  # noqa: E402

DEFAULT_CURATION = os.path.normpath(os.path.join(HERE, "..", "..", "data", "curation"))
STAGE_HEADER = ["input", "label", "package", "license", "source_path", "placement"]
ARCHIVE_EXT = (".zip", ".wz", ".orgue", ".rcc")


class FetchError(RuntimeError):
    pass


class Reporter:
    def __init__(self, quiet=False):
        self.quiet = quiet
        self.t0 = time.monotonic()

    def say(self, msg):
        if not self.quiet:
            print(f"fetch: {msg}", file=sys.stderr, flush=True)

    def skip(self, pkg, path, why):
        if not self.quiet:
            print(f"fetch: skip {pkg}:{path}: {why}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ licences --

def parse_dep5(text):
    """(patterns, license) per Files paragraph of a machine-readable copyright
    file, in order; None when the file is not machine-readable."""
    if not re.match(r"^Format:\s*\S*copyright-format", text):
        return None
    paras = []
    for block in re.split(r"\n\s*\n", text):
        fields = {}
        key = None
        for line in block.split("\n"):
            if not line.strip():
                continue
            if line[0] in " \t" and key:
                fields[key] += "\n" + line.strip()
                continue
            m = re.match(r"^([A-Za-z-]+):\s*(.*)$", line)
            if m:
                key = m.group(1).lower()
                fields[key] = m.group(2)
        if "files" in fields and "license" in fields:
            lic = fields["license"].split("\n")[0].strip()
            pats = fields["files"].split()
            if pats and lic:
                paras.append((pats, lic))
    return paras


def dep5_match(pattern, path):
    """Does a DEP-5 Files pattern (relative to the upstream source) name this
    installed path? The pattern is matched against every '/'-suffix of the path;
    a literal pattern also matches when its last two components are the path's."""
    if pattern.startswith("debian/"):
        return False
    parts = path.strip("/").split("/")
    for i in range(len(parts)):
        if fnmatch.fnmatchcase("/".join(parts[i:]), pattern):
            return True
    if not any(c in pattern for c in "*?["):
        pp = pattern.strip("/").split("/")
        if len(pp) >= 2 and len(parts) >= 2 and pp[-2:] == parts[-2:]:
            return True
    return False


class Licences:
    def __init__(self, overrides, defaults):
        self.overrides = overrides
        self.defaults = defaults
        self.dep5 = {}

    def load_copyright(self, pkg, path):
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                self.dep5[pkg] = parse_dep5(f.read())
        except OSError:
            self.dep5[pkg] = None

    def of(self, pkg, source_path):
        for r in self.overrides:
            if r["package"] == pkg and fnmatch.fnmatchcase(source_path, r["path"]):
                return r["license"]
        paras = self.dep5.get(pkg)
        inner = source_path.split(":", 1)[1] if ":" in source_path else source_path
        found = None
        if paras:
            for pats, lic in paras:
                if any(dep5_match(p, inner) for p in pats):
                    found = lic
        return found or self.defaults.get(pkg, "unknown")


# ----------------------------------------------------------------- packages --

def run(cmd, cwd=None, env=None):
    p = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return p.returncode, p.stdout, p.stderr


def find_deb(debs, pkg):
    if not os.path.isdir(debs):
        return None
    names = sorted(n for n in os.listdir(debs) if n.startswith(pkg + "_") and n.endswith(".deb"))
    return os.path.join(debs, names[-1]) if names else None


def download(pkg, debs, offline, rep):
    deb = find_deb(debs, pkg)
    if deb:
        return deb, False
    if offline:
        raise FetchError(f"{pkg}: not downloaded yet and --offline was given")
    os.makedirs(debs, exist_ok=True)
    rc, out, err = run(["apt-get", "download", "-q", pkg], cwd=debs)
    deb = find_deb(debs, pkg)
    if rc != 0 or not deb:
        msg = (err or out).strip().splitlines()
        raise FetchError(f"{pkg}: apt-get download failed: {msg[-1] if msg else 'exit %d' % rc}"
                         " (is the package list current? run 'apt-get update')")
    return deb, True


def extract(pkg, deb, pkgs):
    dest = os.path.join(pkgs, pkg)
    marker = dest + ".extracted"
    name = os.path.basename(deb)
    if os.path.isdir(dest) and os.path.exists(marker):
        with open(marker, encoding="utf-8") as f:
            if f.read().strip() == name:
                return dest, False
    tmp = dest + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(dest, ignore_errors=True)
    os.makedirs(tmp)
    rc, out, err = run(["dpkg-deb", "-x", deb, tmp])
    if rc != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise FetchError(f"{pkg}: dpkg-deb -x {name} failed: {err.strip()}")
    os.replace(tmp, dest)
    with open(marker, "w", encoding="utf-8") as f:
        f.write(name + "\n")
    return dest, True


def index_tree(root):
    """Installed path ('/usr/...') → file, for every regular file of an extracted package."""
    out = {}
    for d, _dirs, files in os.walk(root):
        for fn in files:
            full = os.path.join(d, fn)
            if os.path.isfile(full) and not os.path.islink(full):
                out["/" + os.path.relpath(full, root)] = full
    return out


# ----------------------------------------------------------------- archives --

def safe_member(inner):
    parts = inner.split("/")
    return inner and not inner.startswith("/") and all(p not in ("", ".", "..") for p in parts)


class Archives:
    """Opens each archive once and extracts members on demand into extract/."""

    def __init__(self, extract_root):
        self.root = extract_root
        self.open = {}

    def close(self):
        for a in self.open.values():
            if isinstance(a, zipfile.ZipFile):
                a.close()
        self.open.clear()

    def member(self, pkg, archive_path, inner):
        if not safe_member(inner):
            raise FetchError(f"unsafe member name '{inner}'")
        base = os.path.basename(archive_path)
        dest = os.path.join(self.root, pkg, base, *inner.split("/"))
        if os.path.isfile(dest):
            return dest
        arc = self.open.get(archive_path)
        if arc is None:
            if archive_path.endswith(".rcc"):
                try:
                    arc = rcc.open_rcc(archive_path)
                except rcc.RccError as e:
                    raise FetchError(str(e)) from None
            else:
                try:
                    arc = zipfile.ZipFile(archive_path)
                except (zipfile.BadZipFile, OSError) as e:
                    raise FetchError(f"{base}: not a readable zip: {e}") from None
            self.open[archive_path] = arc
        if isinstance(arc, rcc.RccFile):
            hits = [e for e in arc.entries if e.path == inner]
            if not hits:
                raise FetchError(f"'{inner}' is not in {base}")
            try:
                data = arc.read(hits[0])
            except rcc.RccError as e:
                raise FetchError(str(e)) from None
        else:
            try:
                data = arc.read(inner)
            except KeyError:
                raise FetchError(f"'{inner}' is not in {base}") from None
            except (zipfile.BadZipFile, OSError, NotImplementedError) as e:
                raise FetchError(f"{base}: '{inner}': {e}") from None
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        tmp = dest + ".partial"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, dest)
        return dest


class WavPack:
    def __init__(self, pkgs):
        self.exe = shutil.which("wvunpack")
        self.env = None
        if not self.exe:
            cand = os.path.join(pkgs, "wavpack", "usr", "bin", "wvunpack")
            if os.path.isfile(cand):
                self.exe = cand
                libdirs = []
                for d, _s, files in os.walk(os.path.join(pkgs, "libwavpack1")):
                    if any(f.startswith("libwavpack.so") for f in files):
                        libdirs.append(d)
                self.env = dict(os.environ)
                self.env["LD_LIBRARY_PATH"] = ":".join(libdirs + [os.environ.get("LD_LIBRARY_PATH", "")])

    @staticmethod
    def is_wavpack(path):
        with open(path, "rb") as f:
            return f.read(4) == b"wvpk"

    def decode(self, path):
        out = path + ".decoded.wav"
        if os.path.isfile(out):
            return out
        if not self.exe:
            raise FetchError("WavPack data, and no wvunpack (apt-get install wavpack, or fetch the 'wavpack' "
                             "and 'libwavpack1' packages)")
        tmp = out + ".partial.wav"
        rc, o, e = run([self.exe, "-q", "-y", path, "-o", tmp], env=self.env)
        if rc != 0 or not os.path.isfile(tmp):
            raise FetchError(f"wvunpack failed: {(e or o).strip()[-200:]}")
        os.replace(tmp, out)
        return out


# -------------------------------------------------------------------- stage --

def load_curation(cdir):
    classes, rules = curate.load_all(cdir)
    pk = curate.read_tsv(os.path.join(cdir, "packages.tsv"), ["package", "tier", "license"])
    labels = curate.read_tsv(os.path.join(cdir, "labels.tsv"), curate.LABELS_HEADER)
    lic = curate.read_tsv(os.path.join(cdir, "licenses.tsv"), ["package", "path", "license"])
    pl = curate.read_tsv(os.path.join(cdir, "placement.tsv"), ["label", "placement"])
    placement = {r["label"]: r["placement"] for r in pl}
    return classes, rules, pk, labels, lic, placement


def select_packages(pk, heavy, only):
    tiers = {"core"} | ({"heavy", "extra"} if heavy else set())
    names = [r["package"] for r in pk]
    if only:
        want = [p.strip() for p in only.split(",") if p.strip()]
        bad = [p for p in want if p not in names or p in ("wavpack", "libwavpack1")]
        if bad:
            raise FetchError(f"not in data/curation/packages.tsv: {', '.join(bad)} (known: "
                             f"{', '.join(r['package'] for r in pk if r['tier'] != 'tool')})")
        return want
    return [r["package"] for r in pk if r["tier"] in tiers]


def stage_package(pkg, root, listed, add_rules, archives, wavpack, licences, placement, stage_dir, rep,
                  rows, skipped):
    tree = index_tree(root)
    by_base = {}
    for inst, full in tree.items():
        if inst.endswith(ARCHIVE_EXT):
            by_base.setdefault(os.path.basename(inst), []).append(full)
    todo = [(r["source_path"], r["label"]) for r in listed]
    listed_paths = {r["source_path"] for r in listed}
    for rule in add_rules:
        for inst in sorted(tree):
            if inst not in listed_paths and fnmatch.fnmatchcase(inst, rule["path"]):
                todo.append((inst, rule["label"]))
                listed_paths.add(inst)
    n_ok = 0
    for source_path, label in todo:
        try:
            if ":" in source_path:
                arc_name, inner = source_path.split(":", 1)
                cands = by_base.get(arc_name, [])
                if not cands:  # versioned names: demo.orgue → demo-<hash>.orgue
                    stem, ext = os.path.splitext(arc_name)
                    cands = [f for b, fs in by_base.items() if b.endswith(ext) and b.startswith(stem + "-")
                             for f in fs]
                if not cands:
                    raise FetchError(f"archive '{arc_name}' is not in the package")
                if len(cands) > 1:
                    raise FetchError(f"archive name '{arc_name}' is ambiguous ({len(cands)} files)")
                path = archives.member(pkg, cands[0], inner)
            else:
                path = tree.get(source_path)
                if not path:
                    raise FetchError("not in this version of the package")
            if WavPack.is_wavpack(path):
                path = wavpack.decode(path)
        except FetchError as e:
            rep.skip(pkg, source_path, str(e))
            skipped.append((source_path, pkg, label, str(e)))
            continue
        rows.append({"input": os.path.relpath(path, stage_dir), "label": label, "package": pkg,
                     "license": licences.of(pkg, source_path), "source_path": source_path,
                     "placement": placement.get(label, "repeat")})
        n_ok += 1
    return n_ok, len(todo)


def stage_rendered(pkg, root, extract_root, licences, placement, stage_dir, rep, rows, skipped):
    """fluid-soundfont-gm: render phrases per GM program with fluidsynth (render_gm.py)."""
    sf2 = None
    for d, _s, files in os.walk(root):
        for fn in files:
            if fn.lower().endswith(".sf2"):
                sf2 = os.path.join(d, fn)
    if not sf2:
        skipped.append(("*.sf2", pkg, "*", "no .sf2 sound font in the package"))
        rep.skip(pkg, "*.sf2", "no .sf2 sound font in the package")
        return 0, 0
    ok = total = 0
    out_dir = os.path.join(extract_root, pkg, "render")
    for program, k, label, wav, why in render_gm.render_all(sf2, out_dir):
        total += 1
        source_path = f"{os.path.basename(sf2)}:program-{program:03d}/phrase-{k}"
        if wav is None:
            rep.skip(pkg, source_path, why)
            skipped.append((source_path, pkg, label, why))
            continue
        rows.append({"input": os.path.relpath(wav, stage_dir), "label": label, "package": pkg,
                     "license": licences.of(pkg, source_path), "source_path": source_path,
                     "placement": placement.get(label, "repeat")})
        ok += 1
    return ok, total


def stage_tts(pkg, extract_root, licences, placement, stage_dir, rep, rows, skipped):
    """espeak-ng-data: synthetic speech rendered with espeak-ng (render_tts.py), labelled Speech synthesizer."""
    ok = total = 0
    label = render_tts.LABEL
    for name, wav, why in render_tts.render_all(os.path.join(extract_root, pkg, "render")):
        total += 1
        source_path = f"espeak-ng:{name}"
        if wav is None:
            rep.skip(pkg, source_path, why)
            skipped.append((source_path, pkg, label, why))
            continue
        rows.append({"input": os.path.relpath(wav, stage_dir), "label": label, "package": pkg,
                     "license": licences.of(pkg, source_path), "source_path": source_path,
                     "placement": placement.get(label, "repeat")})
        ok += 1
    return ok, total


def write_tsv(path, header, rows):
    """Rows are dicts (keys = header) or sequences in header order."""
    tmp = path + ".partial"
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write("\t".join(header) + "\n")
        for r in rows:
            vals = [str(r[k]) for k in header] if isinstance(r, dict) else [str(v) for v in r]
            for v in vals:
                if "\t" in v or "\n" in v:
                    raise FetchError(f"{path}: a tab or newline in '{v[:60]}'")
            f.write("\t".join(vals) + "\n")
    os.replace(tmp, path)


def du(path):
    total = 0
    for d, _s, files in os.walk(path):
        for fn in files:
            try:
                total += os.lstat(os.path.join(d, fn)).st_size
            except OSError:
                pass
    return total


def main(argv=None):
    ap = argparse.ArgumentParser(description="Download and extract the source-corpus packages; write the "
                                             "stage list for `batpipe sources build`.")
    ap.add_argument("--dir", default="data/sources", help="corpus directory (default: %(default)s)")
    ap.add_argument("--stage", help="stage list to write (default: DIR/build/stage.tsv)")
    ap.add_argument("--heavy", action="store_true", help="also the heavy and extra packages")
    ap.add_argument("--packages", help="only these packages (comma-separated)")
    ap.add_argument("--offline", action="store_true", help="do not download")
    ap.add_argument("--curation", default=DEFAULT_CURATION, help="curation folder (default: %(default)s)")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    rep = Reporter(a.quiet)
    d = a.dir
    stage = a.stage or os.path.join(d, "build", "stage.tsv")
    stage_dir = os.path.dirname(os.path.abspath(stage))
    try:
        classes, rules, pk, labels, lic_rows, placement = load_curation(a.curation)
        pkgs = select_packages(pk, a.heavy, a.packages)
    except (FetchError, curate.CurationError, OSError) as e:
        print(f"fetch: error: {e}", file=sys.stderr)
        return 2
    defaults = {r["package"]: r["license"] for r in pk}
    licences = Licences(lic_rows, defaults)
    os.makedirs(stage_dir, exist_ok=True)
    debs, pkroot = os.path.join(d, "debs"), os.path.join(d, "pkgs")
    archives = Archives(os.path.join(d, "extract"))
    listed = {}
    for r in labels:
        if r["label"]:
            listed.setdefault(r["package"], []).append(r)
    rows, skipped, failed = [], [], []
    need_wv = "grandorgue-demo" in pkgs and not shutil.which("wvunpack")
    tools = ["wavpack", "libwavpack1"] if need_wv else []
    t0 = time.monotonic()
    downloaded = 0
    for pkg in tools:
        try:
            deb, fresh = download(pkg, debs, a.offline, rep)
            extract(pkg, deb, pkroot)
        except FetchError as e:
            rep.say(f"warning: {e}; WavPack files will be skipped")
    wavpack = WavPack(pkroot)
    for i, pkg in enumerate(pkgs, 1):
        try:
            deb, fresh = download(pkg, debs, a.offline, rep)
            size = os.path.getsize(deb)
            downloaded += size if fresh else 0
            root, new = extract(pkg, deb, pkroot)
        except FetchError as e:
            rep.say(f"[{i}/{len(pkgs)}] {pkg}: skipped: {e}")
            failed.append((pkg, str(e)))
            skipped.append(("*", pkg, "*", str(e)))
            continue
        cpr = os.path.join(root, "usr", "share", "doc", pkg, "copyright")
        licences.load_copyright(pkg, cpr)
        if os.path.isfile(cpr):
            os.makedirs(os.path.join(d, "licenses"), exist_ok=True)
            shutil.copyfile(cpr, os.path.join(d, "licenses", f"{pkg}.copyright"))
        if pkg == "espeak-ng-data":
            ok, total = stage_tts(pkg, os.path.join(d, "extract"), licences, placement, stage_dir, rep, rows, skipped)
        elif pkg == "fluid-soundfont-gm":
            ok, total = stage_rendered(pkg, root, os.path.join(d, "extract"), licences, placement, stage_dir, rep,
                                       rows, skipped)
        else:
            ok, total = stage_package(pkg, root, listed.get(pkg, []), rules.add_rules(pkg), archives, wavpack,
                                      licences, placement, stage_dir, rep, rows, skipped)
        archives.close()
        rep.say(f"[{i}/{len(pkgs)}] {pkg}: {os.path.basename(deb)} ({size / 1e6:.0f} MB"
                f"{', downloaded' if fresh else ''}{', extracted' if new else ''}): {ok} of {total} files staged")
    rows.sort(key=lambda r: (r["package"], r["source_path"]))
    try:
        write_tsv(stage, STAGE_HEADER, rows)
        write_tsv(os.path.join(stage_dir, "stage-skipped.tsv"), ["source_path", "package", "label", "reason"],
                  skipped)
    except (FetchError, OSError) as e:
        print(f"fetch: error: {e}", file=sys.stderr)
        return 1
    rep.say(f"{len(rows)} files staged from {len(pkgs) - len(failed)} packages, {len(skipped)} skipped "
            f"(see {os.path.join(stage_dir, 'stage-skipped.tsv')}); downloaded {downloaded / 1e6:.0f} MB; "
            f"disk {du(d) / 1e9:.2f} GB in {d}; {time.monotonic() - t0:.0f} s")
    if not rows:
        print("fetch: error: nothing was staged", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
