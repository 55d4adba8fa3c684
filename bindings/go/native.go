package mamba3rt

// How the C library is found. The in-tree build directory (<repo>/build) is searched and
// embedded as an rpath; CGO_LDFLAGS="-L<dir> -Wl,-rpath,<dir>" comes first and so wins
// (e.g. an install prefix's lib directory). CGO_CFLAGS="-I<prefix>/include" likewise
// points at an installed header.

/*
#cgo CFLAGS: -I${SRCDIR}/../../include
#cgo LDFLAGS: -L${SRCDIR}/../../build -Wl,-rpath,${SRCDIR}/../../build -lmamba3rt
#include "mamba3rt.h"
*/
import "C"

import (
	"fmt"
	"runtime"
)

// call runs f, a call into the library, and turns its status into an error. The status and
// m3_last_error() are per OS thread, so the goroutine stays on one thread for both.
func call(op string, f func() C.m3_status) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	status := f()
	if status == C.M3_OK {
		return nil
	}
	return &Error{Op: op, Status: Status(status), Message: C.GoString(C.m3_last_error())}
}

// Version is the library version string, e.g. "0.1.0".
func Version() string { return C.GoString(C.m3_version()) }

// ABIVersion is the ABI version the loaded library was built with (1 for these bindings).
func ABIVersion() uint32 { return uint32(C.m3_abi_version()) }

// LiveHandles is the number of C handles (models, sessions, tokenizers, generation
// parameters, generations ...) that are still allocated, process-wide. Tests use it as a
// leak check.
func LiveHandles() int64 { return int64(C.m3_live_handles()) }

// abiVersion is the M3_ABI_VERSION of the header this package was compiled with.
const abiVersion = uint32(C.M3_ABI_VERSION)

func checkABI() error {
	if got := ABIVersion(); got != abiVersion {
		return &Error{Op: "load", Status: StatusUnsupported,
			Message: fmt.Sprintf("libmamba3rt has ABI version %d, this package was built for %d", got, abiVersion)}
	}
	return nil
}
