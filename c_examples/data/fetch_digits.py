#!/usr/bin/env python3
"""Regenerate c_examples/data/digits.csv from the copy scikit-learn ships.

The file is sklearn/datasets/data/digits.csv.gz, decompressed (see LICENSE-digits.txt).
Run from anywhere: python3 c_examples/data/fetch_digits.py
"""
import gzip
import hashlib
import pathlib

import sklearn.datasets

EXPECTED_SHA256 = "6ebb3d2fee246a4e99363262ddf8a00a3c41bee6014c373ed9d9216ba7f651b8"

src = pathlib.Path(sklearn.datasets.__file__).parent / "data" / "digits.csv.gz"
data = gzip.decompress(src.read_bytes())
digest = hashlib.sha256(data).hexdigest()
if digest != EXPECTED_SHA256:
    raise SystemExit(f"{src}: unexpected content (sha256 {digest}); not writing")
out = pathlib.Path(__file__).resolve().parent / "digits.csv"
out.write_bytes(data)
print(f"wrote {out} ({len(data)} bytes, sha256 {digest})")
