"""What a run prints and writes: one table per suite (with its legend and footnotes), the JSON, a plot.

Cells: a rate (BAD appended when the result is above its error tolerance), n/a[k] (refused, the
reason in footnote k), ERROR[k] (a CUDA fault), oom, or - (not attempted). Ratios are
speed-ups, the other's time / flashmin's time: > 1 means flashmin is faster.
"""
from __future__ import annotations

import math
import os

from .suites import PREFILL

# Short column headers; the JSON keeps the full names.
HEADER = {"sdpa-flash": "flash", "sdpa-cudnn": "cudnn", "sdpa-mem-eff": "mem-eff", "sdpa-math": "math"}
TITLES = {"minimal": "minimal: the teaching kernel (ms, lower is better)",
          "prefill": "prefill: TFLOP/s, higher is better",
          "decode": "decode: GB/s, higher is better",
          "cpu": "cpu sanity: ms, lower is better"}


class Notes:
    """Footnotes: each distinct n/a reason gets a number, shown as n/a[k] in the cells."""

    def __init__(self):
        self.reasons = {}

    def ref(self, reason):
        return self.reasons.setdefault(reason, len(self.reasons) + 1)

    def lines(self):
        return [f"  [{k}] {r}" for r, k in self.reasons.items()]


def ok(r):
    return bool(r) and r.get("status") == "ok"


def cell(r, notes, key, fmt):
    """One result as text: the metric (with BAD when wrong), n/a[k], ERROR[k], oom, or -."""
    if r is None or r["status"] == "skip":
        return "-"
    if r["status"] in ("n/a", "error"):
        return f"{'n/a' if r['status'] == 'n/a' else 'ERROR'}[{notes.ref(r['reason'])}]"
    if r["status"] != "ok":
        return r["status"]
    return fmt(r[key]) + (" BAD" if r["bad"] else "")


def speedup(other, mine, digits=2):
    """other's time / mine (> 1: mine is faster), or - when either did not run."""
    return f"{other['ms'] / mine['ms']:.{digits}f}x" if ok(other) and ok(mine) else "-"


def format_table(headers, body):
    widths = [max(len(h), *(len(row[i]) for row in body)) if body else len(h) for i, h in enumerate(headers)]
    line = lambda cells: "| " + " | ".join(c.rjust(w) for c, w in zip(cells, widths)) + " |"
    sep = "|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|"
    return "\n".join([line(headers), sep, *(line(row) for row in body)])


def _num(v):
    """Rates as whole numbers (412, 2214); small ones (CPU) still readable."""
    return f"{v:.0f}" if v >= 100 else f"{v:.3g}"


def _err(r):
    return f"{r['err']:.1e}" if ok(r) and r.get("err") is not None else "-"


def _ms(v):
    return f"{v:.3f}"


def _columns(rows, skip=lambda n: False):
    """Result names in first-seen order that some row attempted."""
    names = []
    for row in rows:
        for n, r in row["results"].items():
            if n not in names and not skip(n) and r.get("status", "skip") != "skip":
                names.append(n)
    return names


def _forced(meta):
    """The columns of the kernels forced with --fm-kernels."""
    return [f"fm-{k}" for k in meta.get("fm_kernels") or ()]


def table_minimal(rows, meta):
    notes, body = Notes(), []
    for row in rows:
        c, res = row["config"], row["results"]
        mn, man = res["minimal"], res["manual fp32"]
        orig = c["original_published_ms"]
        faster = f"{orig / mn['ms']:.1f}x" if orig and ok(mn) else "-"
        body.append([str(c["N"]), str(c["B"]), cell(mn, notes, "ms", _ms), _err(mn),
                     cell(man, notes, "ms", _ms), speedup(man, mn),
                     cell(res["sdpa fp16"], notes, "ms", _ms), cell(res["fm fp16"], notes, "ms", _ms),
                     f"{orig}" if orig else "-", faster])
    headers = ["N", "B", "minimal ms", "err", "manual fp32 ms", "manual/minimal",
               "sdpa fp16 ms", "fm fp16 ms", "original ms*", "x faster than original*"]
    legend = ["H=12, D=64, fp32 unless marked; err = minimal vs float64, max|diff|/max|ref|.",
              "manual/minimal = manual time / minimal time (> 1: the minimal kernel is faster).",
              "* PUBLISHED figures of the original flash-attention-minimal kernel (H100 80GB),"
              " not measured in this run."]
    return format_table(headers, body), legend + notes.lines()


def table_prefill(rows, meta):
    notes, body = Notes(), []
    names = _columns(rows)
    forced = _forced(meta)
    for row in rows:
        c, res = row["config"], row["results"]
        fm = res.get("fm")
        floor = c.get("floor_ms")
        body.append([str(c["hdim"]), "yes" if c["causal"] else "no", str(c["N"]), c.get("auto_kernel", "?"),
                     *(cell(res.get(n), notes, "tflops", _num) for n in names),
                     speedup(res.get("sdpa-cudnn"), fm), speedup(res.get("sdpa-flash"), fm),
                     *(speedup(res.get("sdpa-cudnn"), res.get(n)) for n in forced),
                     f"{floor * 1e3:.1f}" if floor else "-",
                     f"{100 * floor / fm['ms']:.0f}%" if floor and ok(fm) else "-", _err(fm)])
    headers = ["hdim", "causal", "N", "auto", *(HEADER.get(n, n) for n in names), "fm/cudnn", "fm/flash",
               *(f"{n[3:]}/cudnn" for n in forced), "floor us", "fm %floor", "fm err"]
    c = rows[0]["config"] if rows else {"B": 0, "N": 0, "dtype": "?"}
    mm = meta.get("matmul")
    legend = [f"TFLOP/s = 4*B*H*N^2*D (halved when causal) / time; (B, H, N, D) inputs, {c['dtype']},"
              f" B*N = {c['B'] * c['N']} tokens, H*hdim = {PREFILL.hidden}.",
              "fm = flashmin auto (its kernel in 'auto'), fm-NAME = flashmin with kernel NAME forced (use_kernel);"
              " flash, cudnn, mem-eff, math = torch SDPA forced to that backend (sdpa_kernel), sdpa = SDPA's own"
              " choice, manual = matmul-softmax-matmul in the input dtype.",
              "X/cudnn, fm/flash = the other's time / flashmin's (> 1: flashmin faster). - = not attempted.",
              ("floor = FLOPs / the dense-matmul rate of this run: torch.matmul {n}^3 {dtype} {rate} TFLOP/s"
               " ({ms:.3f} ms); fm %floor = floor time / fm time.").format(n=mm["n"], dtype=mm["dtype"], rate=_num(mm["tflops"]),
                                                                         ms=mm["ms"])
              if mm else "floor: no dense-matmul rate measured in this run."]
    return format_table(headers, body), legend + notes.lines()


def read_ceiling(res):
    """The fastest pure reader of the cell (a result dict), or None."""
    readers = [r for n, r in res.items() if n.startswith("read-") and ok(r)]
    return max(readers, key=lambda r: r["gbps"]) if readers else None


def table_decode(rows, meta):
    notes, body = Notes(), []
    names = _columns(rows, skip=lambda n: n.startswith("read-"))
    forced = _forced(meta)
    us = lambda r: f"{r['ms'] * 1e3:.1f}" if ok(r) else "-"
    share = lambda r, top: f"{100 * r['gbps'] / top['gbps']:.0f}%" if ok(r) and top else "-"
    for row in rows:
        c, res = row["config"], row["results"]
        fm, sdpa, top = res.get("fm"), res.get("sdpa"), read_ceiling(res)
        body.append([str(c["B"]), str(c["H"]), str(c["Hkv"]), str(c["D"]), str(c["L"]), c.get("auto_kernel", "?"),
                     *(cell(res.get(n), notes, "gbps", _num) for n in names),
                     _num(top["gbps"]) if top else "-", us(fm), us(sdpa),
                     speedup(sdpa, fm, 3), speedup(res.get("sdpa-flash"), fm, 3),
                     *(speedup(sdpa, res.get(n), 3) for n in forced),
                     share(fm, top), share(sdpa, top), _err(fm)])
    headers = ["B", "Hq", "Hkv", "D", "L", "auto", *(HEADER.get(n, n) for n in names), "read", "fm us", "sdpa us",
               "fm/sdpa", "fm/flash", *(f"{n[3:]}/sdpa" for n in forced), "fm %read", "sdpa %read", "fm err"]
    dtype = rows[0]["config"]["dtype"] if rows else ""
    legend = [f"GB/s = K + V bytes read once (2*B*Hkv*L*D*elem) / time; one query token, non-causal, {dtype},"
              " (B, Hkv, L, D) cache. us = microseconds per call.",
              "fm = flashmin auto (its kernel in 'auto'), fm-NAME = flashmin with kernel NAME forced;"
              " sdpa = SDPA's own choice (cuDNN on Hopper), flash = SDPA forced to FlashAttention-2;"
              " cudnn, mem-eff = SDPA forced to that backend, fm-kvcache = flash_attn_with_kvcache on a"
              " (B, L, Hkv, D) cache, manual = matmul-softmax-matmul.",
              "read = the read ceiling: the fastest pure reader of the same K and V (torch.sum over both; on CUDA"
              " a Triton sweep of each, 2 and 8 programs per SM); X %read = X's GB/s / read.",
              "X/sdpa, fm/flash = the other's time / flashmin's (> 1: flashmin faster). - = not attempted."]
    return format_table(headers, body), legend + notes.lines()


def table_cpu(rows, meta):
    notes, body = Notes(), []
    for row in rows:
        c, res = row["config"], row["results"]
        body.append([str(c["N"]), "yes" if c["causal"] else "no", c["auto_kernel"],
                     *(cell(res[n], notes, "ms", _ms) for n in ("fm", "fm-ref", "manual", "sdpa")),
                     speedup(res["manual"], res["fm"]), _err(res["fm"])])
    headers = ["N", "causal", "auto", "fm ms", "fm-ref ms", "manual ms", "sdpa ms", "manual/fm", "fm err"]
    legend = ["CPU timings (B=2, H=4, D=64, fp32): a sanity run, not a performance claim."]
    return format_table(headers, body), legend + notes.lines()


TABLES = {"minimal": table_minimal, "prefill": table_prefill, "decode": table_decode, "cpu": table_cpu}


def render(suite, rows, meta):
    """The suite's table as text: title, table, legend, footnotes."""
    table, legend = TABLES[suite](rows, meta)
    return f"## {TITLES[suite]}\n\n{table}\n" + "\n".join(legend)


# ----------------------------------------------------------------------------- plot

def _panels(suite, rows):
    """(title, xlabel, ylabel, log-y, {impl: [(x, y)]}) per panel."""
    spec = {"minimal": (lambda c: "minimal suite (fp32, B=16, H=12, D=64)", "N", "ms", "ms", True),
            "prefill": (lambda c: f"prefill hdim={c['hdim']} causal={int(c['causal'])} {c['dtype']}", "N", "tflops",
                        "TFLOP/s", False),
            "decode": (lambda c: f"decode B={c['B']} Hq={c['H']} Hkv={c['Hkv']} D={c['D']} {c['dtype']}", "L", "gbps",
                       "GB/s", False),
            "cpu": (lambda c: f"cpu sanity causal={int(c['causal'])}", "N", "ms", "ms (CPU)", True)}[suite]
    title_of, xkey, key, ylabel, logy = spec
    panels = {}
    for row in rows:
        c = row["config"]
        if suite == "minimal" and c["N"] == 1:
            continue  # B differs at N=1
        lines = panels.setdefault(title_of(c), {})
        for name, r in row["results"].items():
            if ok(r):
                lines.setdefault(name, []).append((c[xkey], r[key]))
    return [(t, xkey, ylabel, logy, lines) for t, lines in panels.items()]


def write_plot(path, results):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"note: matplotlib is not importable, no plot written to {path} (pip install matplotlib)")
        return
    panels = [p for suite, rows in results.items() for p in _panels(suite, rows)]
    if not panels:
        print("note: nothing to plot")
        return
    ncols = 2 if len(panels) > 1 else 1
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(7 * ncols, 4.2 * nrows), squeeze=False)
    for ax, (title, xlabel, ylabel, logy, lines) in zip(axes.flat, panels):
        for name, pts in lines.items():
            pts.sort()
            mine = name.startswith("fm")
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", lw=2.5 if mine else 1.2,
                    ls="-" if mine else "--", label=name)
        ax.set_xscale("log", base=2)
        if logy:
            ax.set_yscale("log")
        ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"plot written to {path}")
