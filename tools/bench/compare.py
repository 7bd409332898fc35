#!/usr/bin/env python3
"""Compare this library's step with a bandwidth probe, PyTorch and jitted optax, in one run.

On one machine, in one run, for f32 tensors of 1e3 .. 5e7 elements (one flat tensor, and the
same elements split into 1000 tensors), optax's default and centered+momentum configurations,
and "xf" (the default behind optax.clip_by_global_norm(1.0), optax.clip(10.0) and, for the
step, add_decayed_weights(1e-4); PyTorch: clip_grad_norm_ + clip_grad_value_ +
RMSprop(weight_decay=1e-4)), on 1 thread and on all threads:

  probe     tools/bench/stream_probe.c: the same reads and writes as a step with trivial
            arithmetic, i.e. the memory (or cache) bandwidth ceiling for that pattern
  rs-step   this library's fused step (update + apply_updates) through the C ABI
  rs-update this library's update only (updates to a separate buffer) through the C ABI
  torch     torch.optim.RMSprop(...).step() on CPU, default implementation (for-loop)
  torch-fe  the same with foreach=True
  optax     optax.rmsprop update + optax.apply_updates in one jax.jit, buffers donated

Threads: "1" runs every process pinned to CPU 0 (taskset -c 0) and asks each for one thread
(rmsprop_set_threads(1), torch.set_num_threads(1), XLA_FLAGS with
--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1, probe with 1 thread);
"all" leaves the process unpinned with one thread per CPU (os.cpu_count()).

Bytes per element (f32, counted as the algorithm's reads + writes, the same for every
implementation, whatever extra passes an implementation makes):
  step   default 3R+2W = 20 B   centered+momentum 5R+4W = 36 B
  update default 2R+2W = 16 B   centered+momentum 4R+4W = 32 B
  xf     counted as default (20 B / 16 B): the global norm's extra read of the gradients is
         the overhead being measured, so "% ceil" against the default probe shows its cost
The probe is matched to rs-step / rs-update, so "% ceil" is bandwidth reached over the
bandwidth available to that access pattern. The library and its probe run alternately, sample
by sample, in one process (abi_bench ... paired), and "% ceil" is the median over sample pairs
of probe time / library time, so that load from elsewhere hits both alike (on all threads it is
capped by library GB/s over the 1-thread probe's GB/s, for sizes the library runs on one thread). Times are medians of several samples (small sizes batch many calls
per sample); the whole matrix runs --rounds times (default 3) and each reported time is the
median of its per-round medians, so that a burst of other load on a shared machine moves no
result. "x peer" is the peer's time over rs-step's time.

Usage:
  python3 tools/bench/compare.py --install          # pip-installs torch, jax, optax, matplotlib
  python3 tools/bench/compare.py --quick            # 1e3, 1e5, 1e7; fewer samples (~10 min on 2 cores)
  python3 tools/bench/compare.py                    # all sizes up to 5e7
  python3 tools/bench/compare.py --ftz-effect      # results with vs without flushing subnormals
Options: --sizes 1e3,1e7  --threads 1,all  --configs default,cm  --layouts flat,t1000
         --skip torch,optax  --rounds N  --out DIR  --no-build
RMSPROP_SIMD=baseline|avx2|avx512 in the environment caps the library's SIMD path.
Writes DIR/results.csv, DIR/table.md, DIR/compare.png (default DIR: tools/bench/results).
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
BYTES = {
    ("step", "default"): 20,
    ("step", "cm"): 36,
    ("update", "default"): 16,
    ("update", "cm"): 32,
    ("step", "xf"): 20,
    ("update", "xf"): 16,
}
TENSORS = 1000


def target_dir() -> Path:
    return Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")).resolve()


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- building


def build(no_build: bool) -> tuple[Path, Path]:
    lib_dir = target_dir() / "release"
    bin_dir = target_dir() / "bench-tools"
    bin_dir.mkdir(parents=True, exist_ok=True)
    if not no_build:
        log("building the library: cargo build --release --lib")
        subprocess.run(["cargo", "build", "--release", "--lib"], cwd=ROOT, check=True)
    if not (lib_dir / "librmsprop.so").exists():
        sys.exit(f"{lib_dir / 'librmsprop.so'} missing: build the library first")
    # Programs linked against librmsprop.so load it by its SONAME, librmsprop.so.0.
    soname_link = lib_dir / "librmsprop.so.0"
    if not soname_link.is_symlink():
        soname_link.unlink(missing_ok=True)
        soname_link.symlink_to("librmsprop.so")
    cc = os.environ.get("CC", "cc")
    probe = bin_dir / "stream_probe"
    driver = bin_dir / "abi_bench"
    subprocess.run(
        [cc, "-O3", "-march=x86-64-v3", "-pthread", "-o", str(probe), str(HERE / "stream_probe.c")],
        check=True,
    )
    subprocess.run(
        [cc, "-O3", "-march=x86-64-v3", "-pthread", "-I", str(ROOT / "include"), "-o", str(driver),
         str(HERE / "abi_bench.c"), "-L", str(lib_dir), "-lrmsprop", f"-Wl,-rpath,{lib_dir}"],
        check=True,
    )
    return probe, driver


def ftz_effect(out: Path):
    """Run tools/bench/ftz_effect.c with and without flushing and compare the results."""
    import numpy as np
    lib_dir = target_dir() / "release"
    exe = target_dir() / "bench-tools" / "ftz_effect"
    subprocess.run([os.environ.get("CC", "cc"), "-O2", "-I", str(ROOT / "include"), "-o", str(exe),
                    str(HERE / "ftz_effect.c"), "-L", str(lib_dir), "-lrmsprop",
                    f"-Wl,-rpath,{lib_dir}", "-lm"], check=True)
    dumps = {}
    for ftz in ("1", "0"):
        f = out / f"ftz_effect_{ftz}.bin"
        subprocess.run([str(exe), str(f)], check=True, env={**os.environ, "RMSPROP_FTZ": ftz})
        dumps[ftz] = np.fromfile(f, np.float32).reshape(4, 2, -1)
        f.unlink()
    tiny = np.finfo(np.float32).tiny
    lines = ["| scenario | config | params differing | nu differing | subnormal nu (IEEE) | subnormal nu (FTZ) |",
             "|---|---|---|---|---|---|"]
    for k, (sc, cfg) in enumerate([(s, c) for s in ("dead units", "tiny grads") for c in ("default", "cm")]):
        (pf, nf), (pi, ni) = dumps["1"][k], dumps["0"][k]
        n = pf.size
        sub = lambda v: int(((v != 0) & (np.abs(v) < tiny)).sum())
        lines.append(f"| {sc} | {cfg} | {int((pf != pi).sum())} of {n} | {int((nf != ni).sum())} | "
                     f"{sub(ni)} | {sub(nf)} |")
    text = "\n".join(lines)
    (out / "ftz_effect.md").write_text(text + "\n")
    print(text)


def install():
    pkgs = ["torch", "jax", "optax", "matplotlib", "numpy"]
    log("pip install", " ".join(pkgs), "(torch from PyPI is large: ~0.5 GB wheel + CUDA libraries)")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", *pkgs], check=True)


# ---------------------------------------------------------------- measuring


def pin(threads: str) -> list[str]:
    if threads == "1" and shutil.which("taskset"):
        return ["taskset", "-c", "0"]
    return []


def nthreads(threads: str) -> int:
    return 1 if threads == "1" else (os.cpu_count() or 1)


def samples_for(n: int, quick: bool) -> int:
    if n <= 100_000:
        return 9 if quick else 15
    if n <= 1_000_000:
        return 7 if quick else 11
    if n <= 10_000_000:
        return 5 if quick else 9
    return 3 if quick else 5


def run_native(cmd: list[str]) -> list[float]:
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.split()
    return [float(x) for x in out]


def peer_worker(kind: str, cases: list[dict], threads: str) -> list[dict]:
    """Run the torch or optax cases in one child process (pinned for 1 thread)."""
    env = dict(os.environ)
    if kind == "optax" and threads == "1":
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") +
                            " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1").strip()
    if kind == "optax":
        env.setdefault("JAX_PLATFORMS", "cpu")
    cmd = pin(threads) + [sys.executable, str(Path(__file__).resolve()), "--worker", kind,
                          "--worker-threads", str(nthreads(threads))]
    p = subprocess.run(cmd, input=json.dumps(cases), capture_output=True, text=True, env=env)
    if p.returncode != 0:
        log(f"{kind} worker failed ({p.returncode}):\n{p.stderr[-3000:]}")
        return []
    return [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]


def timeit(fn, samples: int) -> tuple[float, float]:
    t0 = time.perf_counter()
    k = 0
    while k < 2 or (time.perf_counter() - t0 < 0.05 and k < 200):
        fn()
        k += 1
    one = (time.perf_counter() - t0) / k
    batch = 1 if one >= 2e-3 else int(2e-3 / one) + 1
    ts = []
    for _ in range(samples):
        a = time.perf_counter()
        for _ in range(batch):
            fn()
        ts.append((time.perf_counter() - a) / batch)
    return statistics.median(ts), min(ts)


def sizes_of(n: int, tensors: int) -> list[int]:
    s = [n // tensors] * tensors
    s[-1] += n - sum(s)
    return s


def grads_np(n: int):
    import numpy as np
    i = np.arange(n, dtype=np.uint64)
    u = ((i * np.uint64(2654435761)) & np.uint64(0xFFFFFFFF)) >> np.uint64(8)
    g = 1e-3 * (0.5 + u.astype(np.float64) / float(1 << 24))
    g[1::2] *= -1
    return g.astype(np.float32)


def worker_torch(cases: list[dict], threads: int):
    import torch
    torch.set_num_threads(threads)
    for c in cases:
        n, tensors = c["n"], c["tensors"]
        g_all = torch.from_numpy(grads_np(n))
        res = {}
        for impl, foreach in (("torch", None), ("torch-fe", True)):
            params = [torch.full((s,), 0.5, dtype=torch.float32, requires_grad=True)
                      for s in sizes_of(n, tensors)]
            off = 0
            for p in params:
                p.grad = g_all[off:off + p.numel()].clone()
                off += p.numel()
            kw = dict(lr=1e-3, alpha=0.9, eps=1e-8, foreach=foreach)
            if c["config"] == "cm":
                kw.update(centered=True, momentum=0.9)
            if c["config"] == "xf":
                kw.update(weight_decay=1e-4)
            opt = torch.optim.RMSprop(params, **kw)
            fn = opt.step
            if c["config"] == "xf":
                def fn(opt=opt, params=params, foreach=foreach):
                    torch.nn.utils.clip_grad_norm_(params, 1.0, foreach=foreach)
                    torch.nn.utils.clip_grad_value_(params, 10.0, foreach=foreach)
                    opt.step()
            med, mn = timeit(fn, c["samples"])
            res[impl] = (med, mn)
            del opt, params
        for impl, (med, mn) in res.items():
            print(json.dumps({**c, "impl": impl, "median": med, "min": mn}), flush=True)


def worker_optax(cases: list[dict], threads: int):
    import functools
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax
    for c in cases:
        n, tensors = c["n"], c["tensors"]
        kw = {}
        if c["config"] == "cm":
            kw = dict(centered=True, momentum=0.9)
        opt = optax.rmsprop(1e-3, decay=0.9, eps=1e-8, **kw)
        if c["config"] == "xf":
            opt = optax.chain(optax.clip_by_global_norm(1.0), optax.clip(10.0),
                              optax.add_decayed_weights(1e-4), opt)
        g_all = grads_np(n)
        sizes = sizes_of(n, tensors)
        offs = np.cumsum([0] + sizes)
        if tensors == 1:
            params = jnp.full((n,), 0.5, jnp.float32)
            grads = jnp.asarray(g_all)
        else:
            params = [jnp.full((s,), 0.5, jnp.float32) for s in sizes]
            grads = [jnp.asarray(g_all[offs[i]:offs[i + 1]]) for i in range(tensors)]
        state = opt.init(params)

        @functools.partial(jax.jit, donate_argnums=(0, 1))
        def step(p, s, g):
            u, s = opt.update(g, s, p)
            return optax.apply_updates(p, u), s

        box = [params, state]

        def one():
            p, s = step(box[0], box[1], grads)
            jax.block_until_ready(p)
            box[0], box[1] = p, s

        t = time.perf_counter()
        one()  # compile
        compile_s = time.perf_counter() - t
        med, mn = timeit(one, c["samples"])
        print(json.dumps({**c, "impl": "optax", "median": med, "min": mn,
                          "compile_s": compile_s}), flush=True)
        del box, params, state, grads


# ---------------------------------------------------------------- report


def fmt_t(s: float) -> str:
    if s < 1e-3:
        return f"{s * 1e6:.2f} us"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def fmt_n(n: int) -> str:
    e = len(str(n)) - 1
    m = n / 10 ** e
    return f"{m:g}e{e}"


def report(rows: list[dict], out: Path, meta: dict):
    by = {}
    for r in rows:
        by[(r["impl"], r["config"], r["layout"], r["threads"], r["n"])] = r
    keys = sorted({(r["config"], r["layout"], r["threads"], r["n"]) for r in rows},
                  key=lambda k: (k[0], k[2], k[1], k[3]))
    lines = []
    head = ("| config | layout | thr | n | ceiling GB/s | step | step Gelem/s | step GB/s | step % ceil "
            "| update | upd % ceil | torch | x torch | torch-fe | x torch-fe | optax | x optax |")
    lines.append(head)
    lines.append("|" + "---|" * (head.count("|") - 1))
    for cfg, lay, thr, n in keys:
        def g(impl):
            return by.get((impl, cfg, lay, thr, n))
        rs, up, pr, pu = g("rs-step"), g("rs-update"), g("probe-step"), g("probe-update")
        cells = [cfg, lay, thr, fmt_n(n)]
        cells.append(f"{pr['ceiling_gbps']:.1f}" if pr else "")
        if rs:
            cells += [fmt_t(rs["median"]), f"{rs['elems_per_s'] / 1e9:.2f}", f"{rs['gbps']:.1f}",
                      f"{rs.get('pct_ceiling', float('nan')):.0f}%"]
        else:
            cells += ["", "", "", ""]
        if up:
            cells += [fmt_t(up["median"]), f"{up.get('pct_ceiling', float('nan')):.0f}%"]
        else:
            cells += ["", ""]
        for peer in ("torch", "torch-fe", "optax"):
            p = g(peer)
            if p and rs:
                cells += [fmt_t(p["median"]), f"{p['median'] / rs['median']:.1f}x"]
            else:
                cells += ["", ""]
        lines.append("| " + " | ".join(cells) + " |")
    md = "\n".join(lines)
    header = (f"Machine: {meta['cpu']} ({meta['cpus']} CPUs), {meta['date']}\n"
              f"Command: {meta['command']}\n"
              f"SIMD path: {meta['simd']}; torch {meta.get('torch', '-')}, "
              f"jax {meta.get('jax', '-')}, optax {meta.get('optax', '-')}\n\n")
    (out / "table.md").write_text(header + md + "\n")
    print(header + md)
    try:
        chart(rows, out)
    except Exception as e:  # matplotlib missing or no display: the table is the result
        log(f"no chart: {e}")


def chart(rows: list[dict], out: Path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    cfgs = sorted({r["config"] for r in rows})
    thrs = sorted({r["threads"] for r in rows})
    fig, axes = plt.subplots(len(cfgs), len(thrs), figsize=(6 * len(thrs), 4.2 * len(cfgs)),
                             squeeze=False)
    styles = {"probe-step": ("k", "--"), "rs-step": ("tab:red", "-"), "rs-update": ("tab:orange", ":"),
              "torch": ("tab:blue", "-"), "torch-fe": ("tab:cyan", "-"), "optax": ("tab:green", "-")}
    for i, cfg in enumerate(cfgs):
        for j, thr in enumerate(thrs):
            ax = axes[i][j]
            for impl, (col, ls) in styles.items():
                for lay, mk in (("flat", "o"), ("t1000", "x")):
                    pts = sorted((r["n"], r["elems_per_s"] / 1e9) for r in rows
                                 if r["impl"] == impl and r["config"] == cfg and r["threads"] == thr
                                 and r["layout"] == lay)
                    if pts:
                        ax.plot([p[0] for p in pts], [p[1] for p in pts], color=col, ls=ls,
                                marker=mk, label=f"{impl} {lay}")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("f32 elements")
            ax.set_ylabel("Gelem/s (higher is better)")
            ax.set_title(f"{cfg}, {thr} thread(s)")
            ax.grid(True, which="both", alpha=0.3)
    axes[0][-1].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(out / "compare.png", dpi=110)
    log(f"wrote {out / 'compare.png'}")


def cpu_name() -> str:
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--install", action="store_true")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--sizes")
    ap.add_argument("--threads", default="1,all")
    ap.add_argument("--configs", default="default,cm")
    ap.add_argument("--layouts", default="flat,t1000")
    ap.add_argument("--skip", default="")
    ap.add_argument("--rounds", type=int, default=3,
                    help="repeat the whole matrix; each result is the median over rounds")
    ap.add_argument("--ftz-effect", action="store_true",
                    help="only compare results with and without flushing subnormals")
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--worker-threads", type=int, default=1, help=argparse.SUPPRESS)
    a = ap.parse_args()

    if a.worker:
        cases = json.loads(sys.stdin.read())
        {"torch": worker_torch, "optax": worker_optax}[a.worker](cases, a.worker_threads)
        return
    if a.install:
        install()
    sizes = ([int(float(s)) for s in a.sizes.split(",")] if a.sizes else
             [1_000, 100_000, 10_000_000] if a.quick else
             [1_000, 100_000, 1_000_000, 10_000_000, 50_000_000])
    threads = a.threads.split(",")
    configs = a.configs.split(",")
    layouts = a.layouts.split(",")
    skip = set(filter(None, a.skip.split(",")))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    probe, driver = build(a.no_build)
    if a.ftz_effect:
        ftz_effect(out)
        return

    meta = {"cpu": cpu_name(), "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d %H:%M %Z"),
            "command": " ".join(["python3", "tools/bench/compare.py", *sys.argv[1:]]),
            "simd": os.environ.get("RMSPROP_SIMD", "default (avx2 where the CPU has it)")}
    rows: list[dict] = []

    def add(impl, mode, cfg, lay, thr, n, med, mn, **extra):
        b = BYTES[(mode, cfg)]
        rows.append({"impl": impl, "mode": mode, "config": cfg, "layout": lay, "threads": thr,
                     "n": n, "median": med, "min": mn, "elems_per_s": n / med,
                     "gbps": n * b / med / 1e9, "bytes_per_elem": b, **extra})

    t_start = time.time()
    raw = []  # one row per measurement and round
    for rnd in range(a.rounds):
        rows = []
        for thr in threads:
            k = nthreads(thr)
            for cfg in configs:
                for n in sizes:
                    s = samples_for(n, a.quick)
                    for mode in ("step", "update"):
                        for lay in layouts:
                            # Paired: library and probe alternate sample by sample in one process.
                            tensors = 1 if lay == "flat" else min(TENSORS, n)
                            v = run_native(pin(thr) + [str(driver), str(n), str(tensors), cfg, mode,
                                                       str(k), str(s), "1e-3", "paired"])
                            add(f"rs-{mode}", mode, cfg, lay, thr, n, v[0], v[1], paired_ratio=v[6])
                            # The probe has no notion of tensors: one ceiling for both layouts.
                            add(f"probe-{mode}", mode, cfg, lay, thr, n, v[3], v[4])
                    log(f"[{time.time() - t_start:6.0f}s] round {rnd + 1}: native {cfg} threads={thr} "
                        f"n={fmt_n(n)} done")
            for peer in ("torch", "optax"):
                if peer in skip:
                    continue
                cases = [{"n": n, "tensors": 1 if lay == "flat" else min(TENSORS, n), "config": cfg,
                          "layout": lay, "samples": samples_for(n, a.quick)}
                         for cfg in configs for lay in layouts for n in sizes]
                for r in peer_worker(peer, cases, thr):
                    extra = {"compile_s": r["compile_s"]} if "compile_s" in r else {}
                    add(r["impl"], "step", r["config"], r["layout"], thr, r["n"], r["median"], r["min"],
                        **extra)
                log(f"[{time.time() - t_start:6.0f}s] round {rnd + 1}: {peer} threads={thr} done")
        for r in rows:
            r["round"] = rnd + 1
        raw += rows
    # The result of a measurement: the median over rounds of its per-round medians (a round
    # hit by other load on the machine does not move it), and the best minimum.
    groups = {}
    for r in raw:
        groups.setdefault((r["impl"], r["mode"], r["config"], r["layout"], r["threads"], r["n"]), []).append(r)
    rows = []
    for key, rs in groups.items():
        med = statistics.median(r["median"] for r in rs)
        base = dict(rs[0])
        if "paired_ratio" in base:
            base["paired_ratio"] = statistics.median(r["paired_ratio"] for r in rs)
        base.update(median=med, min=min(r["min"] for r in rs), elems_per_s=base["n"] / med,
                    gbps=base["n"] * base["bytes_per_elem"] / med / 1e9, rounds=len(rs),
                    spread=(max(r["median"] for r in rs) / min(r["median"] for r in rs)))
        base.pop("round", None)
        rows.append(base)

    # % of ceiling: the library and the probe of the same pattern, size and thread count ran
    # alternately in one process; pct = median over sample pairs of probe time / library time.
    # On "all" threads small steps run on one thread (below SEQUENTIAL_BELOW) while the probe's
    # barrier costs more than its pass, so there the smaller of that and library GB/s over the
    # 1-thread probe's GB/s is reported (never an overstatement).
    probe1 = {(r["mode"], r["config"], r["n"]): r["gbps"] for r in rows
              if r["impl"].startswith("probe-") and r["threads"] == "1"}
    for r in rows:
        if r["impl"].startswith("probe-"):
            best = max(r["gbps"], probe1.get((r["mode"], r["config"], r["n"]), 0.0))
            r["ceiling_gbps"] = best
        elif "paired_ratio" in r:
            pct = 100.0 * r["paired_ratio"]
            p1 = probe1.get((r["mode"], r["config"], r["n"]))
            if r["threads"] != "1" and p1:
                pct = min(pct, 100.0 * r["gbps"] / p1)
            r["pct_ceiling"] = pct
    for mod in ("torch", "jax", "optax"):
        if mod in skip:
            continue
        try:
            v = subprocess.run([sys.executable, "-c", f"import {mod}; print({mod}.__version__)"],
                               capture_output=True, text=True, timeout=120).stdout.strip()
            meta[mod] = v or "-"
        except Exception:
            meta[mod] = "-"
    fields = ["impl", "mode", "config", "layout", "threads", "n", "median", "min", "elems_per_s",
              "gbps", "bytes_per_elem", "pct_ceiling", "paired_ratio", "ceiling_gbps", "compile_s", "rounds",
              "spread"]
    with open(out / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in fields})
    (out / "meta.json").write_text(json.dumps(meta, indent=1))
    report(rows, out, meta)
    log(f"wrote {out / 'results.csv'}, {out / 'table.md'} in {time.time() - t_start:.0f}s")


if __name__ == "__main__":
    main()
