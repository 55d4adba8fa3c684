package mamba3rt

// The C-to-Go callback of Run. It lives in a file of its own because a file with //export
// may only declare, not define, C functions in its preamble.

/*
#include <stdint.h>
#include <stddef.h>
*/
import "C"

import "runtime/cgo"

//export mamba3rtGoPiece
func mamba3rtGoPiece(handle C.uintptr_t, token C.int32_t, piece *C.char, length C.size_t) (stop C.int) {
	state := cgo.Handle(handle).Value().(*runState)
	if state.didPanic || state.err != nil {
		return 1
	}
	defer func() {
		if r := recover(); r != nil {
			state.panicked, state.didPanic = r, true
			stop = 1
		}
	}()
	text := ""
	if length > 0 {
		text = C.GoStringN(piece, C.int(length))
	}
	if err := state.onPiece(Piece{Token: int32(token), Text: text}); err != nil {
		state.err = err
		return 1
	}
	return 0
}
