#!/usr/bin/env python3
"""Shrink a fuzz corpus to a small set that keeps every covered edge.

`cargo fuzz cmin` keeps every input that adds a *feature* (edges and hit-count buckets),
which for `c_api_sequence` is thousands of files. This script asks libFuzzer for each
input's edges (`-merge=1 -use_counters=0` with a merge control file), computes a greedy
set cover (repeatedly the input with the most uncovered edges, smaller first on ties) and
keeps only those inputs. Coverage stays the same (edges).

`--pack N` (for `c_api_sequence` only) then bundles up to N kept programs per file, joined
by `PROGRAM_SEPARATOR` from common/program.rs (each part runs from a fresh state, exactly as its
own input would). The coverage does not change, and the file count drops to a few
hundred.

Usage (after `cargo fuzz build --fuzz-dir tests/fuzz`):
    python3 tests/fuzz/minimize.py c_api_sequence --pack 4
    python3 tests/fuzz/minimize.py checkpoint_load -max_len=8192
"""

import hashlib
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
# Must equal PROGRAM_SEPARATOR in common/program.rs.
SEPARATOR = b"\xff\x00RMSPROP-FUZZ-NEXT-PROGRAM\x00\xff"
MAX_BUNDLE = 4096


def main() -> None:
    target = sys.argv[1]
    extra = sys.argv[2:]
    pack = 1
    if extra[:1] == ["--pack"]:
        pack = int(extra[1])
        extra = extra[2:]
    binary = os.path.join(HERE, "target/x86_64-unknown-linux-gnu/release", target)
    corpus = os.path.join(HERE, "corpus", target)
    with tempfile.TemporaryDirectory() as tmp:
        ctl = os.path.join(tmp, "control")
        empty = os.path.join(tmp, "empty")
        os.mkdir(empty)
        cmd = [
            binary,
            "-merge=1",
            "-use_counters=0",
            "-detect_leaks=0",
            "-rss_limit_mb=2048",
            f"-merge_control_file={ctl}",
            *extra,
            empty,
            corpus,
        ]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(ctl) as f:
            lines = f.read().splitlines()
    n = int(lines[0])
    files = lines[2 : 2 + n]
    cov: dict[int, set[int]] = {}
    for line in lines[2 + n :]:
        parts = line.split()
        if parts and parts[0] == "COV":
            cov[int(parts[1])] = set(int(x) for x in parts[2:])
    size = {i: os.path.getsize(files[i]) for i in cov}
    uncovered = set().union(*cov.values()) if cov else set()
    total = len(uncovered)
    keep = []
    while uncovered:
        best = max(cov, key=lambda i: (len(cov[i] & uncovered), -size[i]))
        gain = cov[best] & uncovered
        if not gain:
            break
        keep.append(best)
        uncovered -= gain
    kept = [files[i] for i in keep]
    contents = [open(f, "rb").read() for f in kept]
    for name in os.listdir(corpus):
        os.remove(os.path.join(corpus, name))
    bundles: list[bytes] = []
    group: list[bytes] = []
    for c in sorted(contents, key=len):
        if SEPARATOR in c or pack == 1:
            bundles.append(c)
            continue
        if group and (
            len(group) == pack
            or sum(len(g) for g in group) + len(SEPARATOR) * len(group) + len(c) > MAX_BUNDLE
        ):
            bundles.append(SEPARATOR.join(group))
            group = []
        group.append(c)
    if group:
        bundles.append(SEPARATOR.join(group))
    for b in bundles:
        with open(os.path.join(corpus, hashlib.sha1(b).hexdigest()), "wb") as f:
            f.write(b)
    print(
        f"{target}: {total} edges covered by {len(kept)} inputs "
        f"({sum(len(c) for c in contents)} bytes), written as {len(bundles)} files"
    )


if __name__ == "__main__":
    main()
