"""Read the SASS of compiled kernels and check what the compiler made of them.

    python scripts/check_sass.py FILE [FILE ...]      (objects, cubins or the extension's .so)
    python scripts/check_sass.py --hopper FILE ...    (also: the sm_90a prefill kernels use HGMMA and TMA)

Two checks, per kernel:
- Uniform registers read by a memory instruction (an address `[R+URn]`, a cache-policy
  descriptor `desc[URn]`) that no instruction of the kernel writes. ptxas 13.0 emitted such copies
  for decode_kernel's 16-key pages at head dim 128 with the evict-first policy (LDGSTS
  `[R159+UR0+0x1100], desc[UR1]`, UR0 and UR1 set nowhere), and they stopped on an illegal
  instruction on the H200 (docs/perf-notes.md, "Paged decode: a ptxas fault"). The test is
  conservative: a register that appears anywhere outside a memory operand (as a destination or a
  source) counts as written, so only one seen in memory operands alone, which nothing can have
  written, is reported.
- With --hopper: every sm_90 prefill kernel (prefill_sm90_kernel) issues HGMMA (wgmma) and a TMA
  load (UTMALDG, cp.async.bulk.tensor), and counts of both are printed.

cuobjdump comes from $CUOBJDUMP, PATH, $CUDA_HOME/bin or /usr/local/cuda/bin, or the PyPI wheel
nvidia-cuda-cuobjdump; its -sass needs nvdisasm beside it or on PATH (the wheel
nvidia-cuda-nvdisasm installs into the same folder). Exit status 1 when a check fails.
"""
import argparse
import collections
import glob
import os
import re
import shutil
import subprocess
import sys


def wheel_bins():
    """The PyPI wheels' tool folders (nvidia/cu*/bin in site-packages)."""
    return [d for site in sys.path for d in sorted(glob.glob(os.path.join(site, "nvidia", "cu*", "bin")))]


def find_cuobjdump():
    candidates = [os.environ.get("CUOBJDUMP"), shutil.which("cuobjdump")]
    for home in (os.environ.get("CUDA_HOME"), "/usr/local/cuda"):
        if home:
            candidates.append(os.path.join(home, "bin", "cuobjdump"))
    candidates += [os.path.join(d, "cuobjdump") for d in wheel_bins()]
    for c in candidates:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    sys.exit("check_sass: cuobjdump not found (set CUOBJDUMP, or pip install nvidia-cuda-cuobjdump)")


def kernels(sass):
    """(architecture, mangled name, [instruction text]) for each function of cuobjdump -sass output."""
    for section in re.split(r"\n(?=[ \t]*code for sm_)", sass)[1:]:
        arch = re.match(r"[ \t]*code for (sm_\w+)", section).group(1)
        for chunk in re.split(r"\n\s*Function : ", section)[1:]:
            name, body = chunk.split("\n", 1)
            code = []
            for line in body.split("\n"):
                m = re.match(r"\s*/\*[0-9a-f]{4,}\*/\s+(.*?)\s*;", line)
                if m:
                    code.append(m.group(1))
            yield arch, name.strip(), code


MEM_OPERAND = re.compile(r"desc\[[^\]]*\]|\[[^\]]*\]")


def unwritten_uniforms(code):
    """Memory instructions reading a uniform register that appears nowhere outside a memory operand."""
    seen = set()
    for ins in code:
        outside = MEM_OPERAND.sub(" ", ins)
        pair = re.match(r"(@\S+\s+)?\S*(\.64|\.WIDE|\.128)", outside) is not None
        for n in map(int, re.findall(r"\bUR(\d+)\b", outside)):
            seen.add(n)
            if pair:
                seen.update((n + 1, n + 2, n + 3))
    bad = []
    for ins in code:
        inside = " ".join(MEM_OPERAND.findall(ins))
        missing = sorted({int(n) for n in re.findall(r"\bUR(\d+)\b", inside)} - seen)
        if missing:
            bad.append((ins, missing))
    return bad


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--hopper", action="store_true", help="also check HGMMA and TMA in the sm_90 prefill kernels")
    args = ap.parse_args()
    tool = find_cuobjdump()
    # cuobjdump -sass runs nvdisasm: look beside it, on PATH, then in the wheels' folders.
    env = dict(os.environ, PATH=os.pathsep.join([os.path.dirname(tool), os.environ.get("PATH", ""), *wheel_bins()]))
    failures, n_kernels, hopper = [], 0, collections.Counter()
    for path in args.files:
        p = subprocess.run([tool, "-sass", path], capture_output=True, text=True, env=env)
        if p.returncode != 0:
            if "does not contain device code" in p.stderr:
                continue
            sys.exit(f"check_sass: cuobjdump failed on {path}: {p.stderr.strip()[:300]}")
        for arch, name, code in kernels(p.stdout):
            n_kernels += 1
            for ins, missing in unwritten_uniforms(code):
                failures.append(f"{path} ({arch}): {name}: `{ins}` reads UR{', UR'.join(map(str, missing))}, written nowhere")
            if "prefill_sm90_kernel" in name and arch.startswith("sm_90"):
                hgmma = sum(ins.split()[0].startswith("HGMMA") or " HGMMA" in ins for ins in code)
                tma = sum("UTMALDG" in ins for ins in code)
                hopper["kernels"] += 1
                hopper["HGMMA"] += hgmma
                hopper["UTMALDG"] += tma
                if args.hopper and (hgmma == 0 or tma == 0):
                    failures.append(f"{path}: {name}: {hgmma} HGMMA, {tma} UTMALDG (both expected)")
    for f in failures[:40]:
        print("FAIL", f)
    if len(failures) > 40:
        print(f"... and {len(failures) - 40} more")
    print(f"check_sass: {n_kernels} kernels in {len(args.files)} files, {len(failures)} problems", end="")
    if hopper["kernels"]:
        print(f"; {hopper['kernels']} sm_90 prefill kernels: {hopper['HGMMA']} HGMMA, {hopper['UTMALDG']} UTMALDG", end="")
    print()
    if n_kernels == 0:
        sys.exit("check_sass: no kernels found")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
