#!/usr/bin/env python3
"""Curation of the first-pass labels (docs/sources.md, "Curation").

  curate.py [--curation DIR]        rewrite DIR/labels.tsv from DIR/first_pass.tsv and DIR/rules.tsv
  curate.py --check [--curation DIR] fail if DIR/labels.tsv is not what the rules give

The rules (DIR/rules.tsv) are ordered; the first rule whose package, path and
first-pass label globs match a listed file decides (relabel, drop, keep). A
listed file that no rule matches keeps its first-pass label if that label is an
AudioSet display name, and is dropped otherwise (UNMAPPED and the first pass's
own buckets). `add` rules are not applied here: fetch.py applies them to the
files of a package that the first pass does not list.

Python 3 standard library only.
"""
import argparse
import fnmatch
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CURATION = os.path.normpath(os.path.join(HERE, "..", "..", "data", "curation"))

LABELS_HEADER = ["package", "source_path", "first_pass", "label", "mid", "action", "rule", "reason"]


class CurationError(ValueError):
    pass


def read_tsv(path, required=None):
    """Rows of a TSV with a header (lines starting with '#' are comments) as dicts,
    each with its line number under '_line'."""
    rows = []
    header = None
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n").rstrip("\r")
            if not line or line.startswith("#"):
                continue
            fields = line.split("\t")
            if header is None:
                header = fields
                missing = [c for c in (required or []) if c not in header]
                if missing:
                    raise CurationError(f"{path}:{lineno}: the header lacks {', '.join(missing)}")
                continue
            if len(fields) < len(header):
                fields += [""] * (len(header) - len(fields))
            if len(fields) > len(header):
                raise CurationError(f"{path}:{lineno}: {len(fields)} fields, the header has {len(header)}")
            row = dict(zip(header, fields))
            row["_line"] = lineno
            rows.append(row)
    if header is None:
        raise CurationError(f"{path}: empty")
    return rows


def load_classes(path):
    """AudioSet display name → mid (and mid → mid)."""
    by_name = {}
    for r in read_tsv(path, ["mid", "name"]):
        by_name[r["name"]] = r["mid"]
    return by_name


def glob_match(pattern, text):
    return fnmatch.fnmatchcase(text, pattern)


class Rules:
    ACTIONS = ("relabel", "drop", "keep", "add")

    def __init__(self, rows, classes, path="rules.tsv"):
        self.rules = []
        for r in rows:
            act = r["action"]
            if act not in self.ACTIONS:
                raise CurationError(f"{path}:{r['_line']}: unknown action '{act}' ({', '.join(self.ACTIONS)})")
            if act in ("relabel", "add") and r["label"] not in classes:
                raise CurationError(f"{path}:{r['_line']}: '{r['label']}' is not an AudioSet display name")
            if act in ("drop", "keep") and r["label"]:
                raise CurationError(f"{path}:{r['_line']}: '{act}' takes no label")
            if not r["reason"]:
                raise CurationError(f"{path}:{r['_line']}: every rule needs a reason")
            self.rules.append(r)
        self.classes = classes

    def match(self, package, source_path, first_label, actions=("relabel", "drop", "keep")):
        for r in self.rules:
            if r["action"] not in actions:
                continue
            if not glob_match(r["package"], package):
                continue
            if not glob_match(r["path"], source_path):
                continue
            if first_label is not None and not glob_match(r["from"] or "*", first_label):
                continue
            return r
        return None

    def add_rules(self, package):
        return [r for r in self.rules if r["action"] == "add" and glob_match(r["package"], package)]


def curate(first_pass, rules, classes):
    """labels.tsv rows (dicts) for every row of the first pass, in its order."""
    out = []
    for fp in first_pass:
        pkg, path, first = fp["package"], fp["path"], fp["class"]
        r = rules.match(pkg, path, first)
        if r is None:
            if first in classes:
                label, action, rule, reason = first, "keep", "", "first-pass label (no rule)"
            else:
                label, action, rule, reason = "", "drop", "", f"first-pass label '{first}' is not an AudioSet class"
        elif r["action"] == "keep":
            if first not in classes:
                raise CurationError(f"rules.tsv:{r['_line']}: keeps '{first}' for {pkg}:{path}, "
                                    "which is not an AudioSet display name")
            label, action, rule, reason = first, "keep", str(r["_line"]), r["reason"]
        elif r["action"] == "drop":
            label, action, rule, reason = "", "drop", str(r["_line"]), r["reason"]
        else:
            label = r["label"]
            action = "keep" if label == first else "relabel"
            rule, reason = str(r["_line"]), r["reason"]
        out.append({"package": pkg, "source_path": path, "first_pass": first, "label": label,
                    "mid": classes.get(label, ""), "action": action, "rule": rule, "reason": reason})
    return out


def format_labels(rows):
    lines = ["# Curated labels: one row per file of first_pass.tsv. Generated by scripts/sources/curate.py",
             "# from first_pass.tsv + rules.tsv (rule = line of rules.tsv that decided; empty = no rule).",
             "\t".join(LABELS_HEADER)]
    for r in rows:
        for k in LABELS_HEADER:
            if "\t" in r[k] or "\n" in r[k]:
                raise CurationError(f"{r['package']}:{r['source_path']}: a tab or newline in '{k}'")
        lines.append("\t".join(r[k] for k in LABELS_HEADER))
    return "\n".join(lines) + "\n"


def load_all(curation):
    classes = load_classes(os.path.join(curation, "audioset_classes.tsv"))
    rules = Rules(read_tsv(os.path.join(curation, "rules.tsv"), ["package", "path", "from", "action", "label",
                                                                  "reason"]),
                  classes, os.path.join(curation, "rules.tsv"))
    return classes, rules


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--curation", default=DEFAULT_CURATION, help="the curation folder (default: %(default)s)")
    ap.add_argument("--check", action="store_true", help="only check that labels.tsv is up to date")
    a = ap.parse_args(argv)
    try:
        classes, rules = load_all(a.curation)
        first = read_tsv(os.path.join(a.curation, "first_pass.tsv"), ["class", "package", "path"])
        rows = curate(first, rules, classes)
    except (CurationError, OSError) as e:
        print(f"curate.py: error: {e}", file=sys.stderr)
        return 2
    text = format_labels(rows)
    target = os.path.join(a.curation, "labels.tsv")
    if a.check:
        try:
            with open(target, encoding="utf-8") as f:
                same = f.read() == text
        except OSError:
            same = False
        if not same:
            print(f"curate.py: {target} is out of date: run scripts/sources/curate.py", file=sys.stderr)
            return 1
        return 0
    tmp = target + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    os.replace(tmp, target)
    n = {"keep": 0, "relabel": 0, "drop": 0}
    for r in rows:
        n[r["action"]] += 1
    print(f"curate.py: {len(rows)} files: {n['keep']} kept, {n['relabel']} relabelled, {n['drop']} dropped "
          f"→ {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
