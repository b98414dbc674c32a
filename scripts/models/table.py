#!/usr/bin/env python3
"""README's real-model table from the `--json` files of `suite.py` runs.

Usage: python scripts/models/table.py RESULTS.json... [--readme README.md]
Each model gets a row and each (exporter, opset) of the files a column: `ok` when
every backend of that run passed (with the worst max|Δ| / max|expected| over the
backends and both sizes), else each failing backend with its first error line.
With --readme, the table replaces what is between README's
`<!-- smelt-models:begin -->` and `<!-- smelt-models:end -->` markers.
"""

import json
import re
import sys

TOL = 1e-4


def cell(r):
    if "export_error" in r:
        msg = re.sub(r"\x1b\[[0-9;]*m|\[[0-9;]*m", "", r["export_error"])
        return "(" + msg.replace("|", "/")[:90] + ")"
    bad = {b: v for b, v in r["backends"].items() if not (isinstance(v, (int, float)) and v <= TOL)}
    if not bad:
        worst = max(r["backends"].values())
        return f"ok on {', '.join(r['backends'])} ({worst:.0e})"
    return "; ".join(f"{b}: " + (f"{v:.1e} > {TOL:.0e}" if isinstance(v, float) else str(v).replace("|", "/")[:100])
                     for b, v in bad.items())


def main():
    args = sys.argv[1:]
    readme = None
    if "--readme" in args:
        i = args.index("--readme")
        readme = args[i + 1]
        del args[i:i + 2]
    runs, models = {}, []
    for path in args:
        for r in json.load(open(path)):
            key = (r["exporter"], r["opset"])
            runs.setdefault(key, {})[r["model"]] = r
            if r["model"] not in models:
                models.append(r["model"])
    keys = sorted(runs, key=lambda k: (k[0] != "torchscript", k))
    lines = ["| model | " + " | ".join(f"{e}, opset {o}" for e, o in keys) + " |",
             "|---|" + "---|" * len(keys)]
    for m in models:
        lines.append(f"| {m} | " + " | ".join(cell(runs[k][m]) if m in runs[k] else "not run" for k in keys) + " |")
    table = "\n".join(lines)
    if readme is None:
        print(table)
        return
    text = open(readme).read()
    a, b = "<!-- smelt-models:begin -->", "<!-- smelt-models:end -->"
    i, j = text.index(a) + len(a), text.index(b)
    open(readme, "w").write(text[:i] + "\n" + table + "\n" + text[j:])


if __name__ == "__main__":
    main()
