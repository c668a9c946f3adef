#!/usr/bin/env python3
"""Reduce the AudioSet ontology (ontology.json) to the class table that batpipe
reads: data/curation/audioset_classes.tsv (mid, display name, restrictions).

The ontology is (c) Google, CC BY-SA 4.0 (https://research.google.com/audioset/).
Usage: make_classes.py ONTOLOGY.json OUT.tsv
"""
import json
import sys


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as f:
        onto = json.load(f)
    rows = []
    for node in onto:
        name = node["name"]
        if "\t" in name or ";" in name or "\n" in name:
            raise SystemExit(f"{argv[1]}: class name {name!r} holds a tab, ';' or newline")
        rows.append((node["id"], name, ",".join(node.get("restrictions", []))))
    rows.sort(key=lambda r: r[1].lower())
    with open(argv[2], "w", encoding="utf-8", newline="\n") as f:
        f.write("# AudioSet ontology classes: id (mid), display name, restrictions.\n")
        f.write("# Reduced from ontology.json of the AudioSet ontology, (c) Google LLC,\n")
        f.write("# licensed CC BY-SA 4.0 (https://creativecommons.org/licenses/by-sa/4.0/);\n")
        f.write("# source: https://github.com/audioset/ontology. Regenerate with\n")
        f.write("# scripts/sources/make_classes.py ontology.json data/curation/audioset_classes.tsv\n")
        f.write("mid\tname\trestrictions\n")
        for r in rows:
            f.write("\t".join(r) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
