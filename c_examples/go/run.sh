#!/bin/sh
# Build librmsprop and run the Go example against it (cgo). Needs Go (Debian: golang-go)
# and a C compiler. Go's caches default to ~/.cache/go-build and ~/go; set GOCACHE and
# GOPATH to move them. No module is downloaded (the module has no dependencies).
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
cargo build --release --lib
# Programs linked against target/release/librmsprop.so load it by its SONAME.
ln -sf librmsprop.so target/release/librmsprop.so.0
cd c_examples/go
exec env GOFLAGS=-mod=mod GOPROXY=off GOTOOLCHAIN=local CGO_ENABLED=1 go run . "$@"
