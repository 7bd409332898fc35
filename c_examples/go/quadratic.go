// quadratic.go: the example of optax.rmsprop's documentation, through rmsprop's C ABI from
// Go (cgo). It prints exactly what c_examples/quadratic.c prints, as optax does:
//
//	Objective function:  14.0
//	Objective function: 1.39E+01
//	Objective function: 1.38E+01
//	Objective function: 1.37E+01
//	Objective function: 1.37E+01
//	Objective function: 1.36E+01
//
// Build from the repository root (run.sh does all of it):
//
//	cargo build --release --lib
//	ln -sf librmsprop.so target/release/librmsprop.so.0   # the SONAME programs load
//	cd c_examples/go && go run .
//
// The #cgo lines below use the header in include/ and the library in target/release (with
// an rpath to it). For an installed rmsprop, replace them with `#cgo pkg-config: rmsprop`
// (and an rpath for a prefix the loader does not search, see docs/packaging.md), or set
// CGO_CFLAGS / CGO_LDFLAGS. Every call's status is checked; on failure the program prints
// the library's message and exits with status 1.
package main

/*
#cgo CFLAGS: -I${SRCDIR}/../../include
#cgo LDFLAGS: -L${SRCDIR}/../../target/release -lrmsprop -Wl,-rpath,${SRCDIR}/../../target/release
#include <rmsprop.h>
*/
import "C"

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// check prints the failed call, the status name and the library's per-thread message and
// exits with status 1 unless status is RMSPROP_OK.
func check(status C.RmspropStatus, what string) {
	if status != C.RMSPROP_OK {
		fmt.Fprintf(os.Stderr, "%s failed: %s: %s\n", what,
			C.GoString(C.rmsprop_status_name(status)), C.GoString(C.rmsprop_last_error_message()))
		os.Exit(1)
	}
}

// f(x) = sum(x^2), accumulated in float32 like jnp.sum over a float32 array of 3. The
// conversion rounds each product, so Go may not fuse it into the sum (the Go spec allows
// fused multiply-add otherwise), exactly as the C example computes it.
func f(x []float32) float32 {
	var s float32
	for _, v := range x {
		s += float32(v * v)
	}
	return s
}

// pythonRepr is Python's repr of a float32 value widened to a Python float: the shortest
// %g form that reads back as the same float32, with ".0" appended to integral values
// ("14.0", not "14"), the same search as quadratic.c's python_repr.
func pythonRepr(v float32) string {
	var s string
	for digits := 1; digits <= 9; digits++ {
		s = strconv.FormatFloat(float64(v), 'g', digits, 64)
		if r, err := strconv.ParseFloat(s, 32); err == nil && float32(r) == v {
			break
		}
	}
	if !strings.ContainsAny(s, ".eEn") {
		s += ".0"
	}
	return s
}

func main() {
	if C.rmsprop_version_number() != C.RMSPROP_VERSION_NUMBER {
		fmt.Fprintf(os.Stderr, "header %s but library %s\n", C.RMSPROP_VERSION_STRING,
			C.GoString(C.rmsprop_version_string()))
		os.Exit(1)
	}

	params := []float32{1, 2, 3}
	n := C.size_t(len(params))
	fmt.Printf("Objective function:  %s\n", pythonRepr(f(params))) // print('...: ', x): two spaces

	// solver = optax.rmsprop(learning_rate=0.003); opt_state = solver.init(params)
	var options *C.struct_RmspropOptions
	check(C.rmsprop_options_new(0.003, &options), "rmsprop_options_new")
	var solver *C.struct_RmspropOptimizer
	check(C.rmsprop_create(options, &n, 1, C.RMSPROP_DTYPE_F32, &solver), "rmsprop_create")
	C.rmsprop_options_free(options) // the optimizer keeps its own copy
	defer C.rmsprop_destroy(solver)

	grad := make([]C.float, len(params))
	updates := make([]C.float, len(params))
	for i := 0; i < 5; i++ {
		for j, p := range params {
			grad[j] = C.float(2 * p) // jax.grad(f)
		}
		check(C.rmsprop_update_f32(solver, &grad[0], &updates[0], n), "rmsprop_update_f32")
		for j := range params {
			params[j] += float32(updates[j]) // optax.apply_updates
		}
		fmt.Printf("Objective function: %.2E\n", f(params))
	}
}
