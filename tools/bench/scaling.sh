#!/usr/bin/env bash
# Thread scaling of the fused step (and update) against the bandwidth probe, for a machine
# with many cores, no network and possibly no Rust toolchain or C compiler.
#
# 1. On the build machine (x86-64 Linux, this repository, cargo and cc):
#      bash tools/bench/scaling.sh --prepare
#    builds target/release/librmsprop.so and copies it, stripped, with the C-ABI driver
#    (abi_bench) and the probe (stream_probe), into target/bench-prebuilt/ (~2 MB; the
#    binaries find the library next to them through an $ORIGIN rpath).
# 2. On the many-core machine, with that folder carried over at the same path:
#      OUT=/some/dir bash tools/bench/scaling.sh          # ~5-8 minutes on 16 cores
#    runs the library and, alternating with it sample by sample, the bandwidth probe of the
#    same access pattern, at 1, 2, 4, 8, 16 threads (capped at the CPU count) for 1e7 and 5e7
#    f32 elements, default and centered+momentum, step and update, flat and (step only) 1000
#    tensors, and writes $OUT/scaling.csv, $OUT/scaling.txt and $OUT/machine.txt.
#    Without a prebuilt folder it builds one first if cargo and cc are there.
# Env: PREBUILT (folder, default target/bench-prebuilt), THREADS ("1 2 4 8 16"),
#      SIZES ("10000000 50000000"), SAMPLES (5). Needs glibc >= what --prepare reports.
set -euo pipefail
cd "$(dirname "$0")/../.."
PREBUILT=${PREBUILT:-target/bench-prebuilt}

prepare() {
  local tdir=${CARGO_TARGET_DIR:-target}
  cargo build --release --lib
  mkdir -p "$PREBUILT"
  cp "$tdir/release/librmsprop.so" "$PREBUILT/librmsprop.so"
  strip -S "$PREBUILT/librmsprop.so" 2>/dev/null || true
  ln -sf librmsprop.so "$PREBUILT/librmsprop.so.0"   # the SONAME the drivers load
  cc -O3 -march=x86-64-v3 -pthread -Iinclude -o "$PREBUILT/abi_bench" tools/bench/abi_bench.c \
    -L"$PREBUILT" -lrmsprop -Wl,-rpath,'$ORIGIN'
  cc -O3 -march=x86-64-v3 -pthread -o "$PREBUILT/stream_probe" tools/bench/stream_probe.c
  echo "prebuilt in $PREBUILT:"
  ls -la "$PREBUILT"
  echo "newest glibc symbol versions needed:"
  for f in "$PREBUILT"/*; do
    printf '  %s: ' "$(basename "$f")"
    objdump -T "$f" 2>/dev/null | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1
  done
}

if [ "${1:-}" = "--prepare" ]; then
  prepare
  exit 0
fi

if [ ! -x "$PREBUILT/abi_bench" ] || [ ! -x "$PREBUILT/stream_probe" ]; then
  if command -v cargo >/dev/null && command -v cc >/dev/null; then
    prepare
  else
    echo "no $PREBUILT/{abi_bench,stream_probe,librmsprop.so} and no cargo/cc to build them" >&2
    exit 1
  fi
fi

OUT=${OUT:-target/scaling-out}
mkdir -p "$OUT"
NCPU=$(nproc)
THREADS=${THREADS:-"1 2 4 8 16"}
SIZES=${SIZES:-"10000000 50000000"}
SAMPLES=${SAMPLES:-5}
CSV="$OUT/scaling.csv"
TXT="$OUT/scaling.txt"

{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "nproc: $NCPU"
  lscpu 2>/dev/null || cat /proc/cpuinfo | head -30
  command -v numactl >/dev/null && numactl -H
  free -g 2>/dev/null || true
} >"$OUT/machine.txt" 2>&1

echo "impl,mode,config,layout,threads,n,median_s,min_s,gbps,pct_of_probe" >"$CSV"
bytes() { # bytes per element of the pattern
  case "$1_$2" in
    step_default) echo 20 ;; update_default) echo 16 ;; step_cm) echo 36 ;; update_cm) echo 32 ;;
  esac
}
row() { # impl mode cfg layout threads n median min [ratio]
  local gb pct=""
  gb=$(awk -v n="$6" -v b="$(bytes "$2" "$3")" -v t="$7" 'BEGIN{printf "%.2f", n*b/t/1e9}')
  [ -n "${9:-}" ] && pct=$(awk -v r="$9" 'BEGIN{printf "%.1f", 100*r}')
  echo "$1,$2,$3,$4,$5,$6,$7,$8,$gb,$pct" >>"$CSV"
  printf '%-7s %-6s %-7s %-5s t=%-3s n=%-9s %10.3f ms %8s GB/s %6s%%\n' "$1" "$2" "$3" "$4" "$5" "$6" \
    "$(awk -v t="$7" 'BEGIN{print t*1e3}')" "$gb" "${pct:--}" | tee -a "$TXT"
}
pin() { [ "$1" = 1 ] && command -v taskset >/dev/null && echo "taskset -c 0"; }
# Library and probe alternate sample by sample in one process (abi_bench ... paired): the
# last field is the median over sample pairs of probe time / library time.
measure() { # n tensors cfg mode threads layout
  local r
  r=$($(pin "$5") "$PREBUILT/abi_bench" "$1" "$2" "$3" "$4" "$5" "$SAMPLES" 1e-3 paired)
  set -- "$@" $r
  [ "$6" = flat ] && row probe "$4" "$3" flat "$5" "$1" "${10}" "${11}"
  row rmsprop "$4" "$3" "$6" "$5" "$1" "$7" "$8" "${13}"
}

start=$(date +%s)
for n in $SIZES; do
  for cfg in default cm; do
    for t in $THREADS; do
      [ "$t" -le "$NCPU" ] || continue
      measure "$n" 1 "$cfg" step "$t" flat
      measure "$n" 1 "$cfg" update "$t" flat
      measure "$n" 1000 "$cfg" step "$t" t1000
    done
  done
done
echo "done in $(($(date +%s) - start)) s; $CSV" | tee -a "$TXT"
