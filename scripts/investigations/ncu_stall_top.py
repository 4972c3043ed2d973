"""Where a kernel's warps wait, per SASS instruction, from an ncu report with the SourceCounters
section (ncu_prefill_cell.py): `ncu --import REP --page source --csv --print-source sass`, the
instructions with the most warp-state samples first, each with its largest stall reasons, and the
samples summed by opcode.

    python scripts/investigations/ncu_stall_top.py rep.ncu-rep [--top 40]
"""
import argparse
import collections
import csv
import io
import subprocess

ap = argparse.ArgumentParser()
ap.add_argument("report")
ap.add_argument("--top", type=int, default=40)
ap.add_argument("--ncu", default="ncu")
args = ap.parse_args()
text = subprocess.run([args.ncu, "--import", args.report, "--page", "source", "--csv", "--print-source", "sass"],
                      capture_output=True, text=True, check=True).stdout
lines = text.splitlines()
start = next(i for i, line in enumerate(lines) if line.startswith('"') and "Source" in line)
rows = list(csv.reader(io.StringIO("\n".join(lines[start:]))))
head, body = rows[0], [r for r in rows[1:] if len(r) == len(rows[0])]


def col(*words):
    for i, h in enumerate(head):
        if all(w.lower() in h.lower() for w in words):
            return i
    return None


src = col("source")
addr = col("address")
allc = col("warp stall sampling", "all")
stall_cols = [i for i, h in enumerate(head) if h.lower().startswith("stall_") or "stall " in h.lower() and "sampling" not in h.lower()]
print("columns:", "; ".join(head)[:2000])


def num(x):
    try:
        return float(x.replace(",", ""))
    except ValueError:
        return 0.0


total = sum(num(r[allc]) for r in body) if allc is not None else 0
print(f"instructions: {len(body)}, warp-state samples: {total:.0f}")
by_op = collections.Counter()
for r in body:
    op = r[src].split()[0] if r[src].split() else "?"
    if op.startswith("@"):
        op = r[src].split()[1] if len(r[src].split()) > 1 else op
    by_op[op.split(".")[0]] += num(r[allc])
print("by opcode:", ", ".join(f"{op} {100 * n / total:.1f}%" for op, n in by_op.most_common(15)))
for r in sorted(body, key=lambda r: -num(r[allc]))[:args.top]:
    reasons = sorted(((num(r[i]), head[i]) for i in stall_cols), reverse=True)[:3]
    why = ", ".join(f"{h.replace('stall_', '')} {100 * n / max(1, num(r[allc])):.0f}%" for n, h in reasons if n > 0)
    a = r[addr] if addr is not None else ""
    print(f"{100 * num(r[allc]) / total:5.1f}%  {a:>8s}  {r[src][:70]:70s}  {why}")
