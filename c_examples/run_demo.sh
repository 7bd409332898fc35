#!/usr/bin/env bash
# The README's demo: build librmsprop, compile the C MLP trainer against it, train on the
# 8x8 digits data set (per-epoch loss/accuracy, final test accuracy).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --lib
# Programs linked against librmsprop.so load it by its SONAME (docs/packaging.md).
ln -sf librmsprop.so target/release/librmsprop.so.0
mkdir -p target/demo
cc -std=c11 -O2 -Wall -Wextra -Iinclude c_examples/mlp_digits.c \
   -Ltarget/release -lrmsprop -Wl,-rpath,"$PWD/target/release" -lm -o target/demo/mlp_digits
exec target/demo/mlp_digits c_examples/data/digits.csv "$@"
