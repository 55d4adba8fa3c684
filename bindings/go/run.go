package mamba3rt

/*
#include <stdint.h>
#include "mamba3rt.h"

// Defined in callback.go (//export); its arguments are Go-compatible C types.
int mamba3rtGoPiece(uintptr_t handle, int32_t token, char* piece, size_t len);

static int m3go_piece(void* user_data, int32_t token, const char* piece, size_t len) {
	return mamba3rtGoPiece((uintptr_t)user_data, token, (char*)piece, len);
}

// The Go closure travels as a runtime/cgo.Handle value, never as a Go pointer.
static m3_status m3go_run(m3_generation* generation, uintptr_t handle, m3_finish_reason* out_finish) {
	return m3_generation_run(generation, m3go_piece, (void*)handle, out_finish);
}
*/
import "C"

import (
	"context"
	"runtime/cgo"
)

// runState is what the C callback reaches through its cgo.Handle.
type runState struct {
	onPiece  func(Piece) error
	err      error       // the callback's error, which stopped the turn
	panicked interface{} // the callback's panic, re-raised after the C call
	didPanic bool
}

// Run produces pieces until the turn finishes, calling onPiece for each, on the calling
// goroutine and its OS thread (the library calls back on the thread that called it). If
// onPiece returns an error, or ctx is done, the turn stops (FinishCancelled) and Run returns
// that error, or ctx.Err(). A panic in onPiece stops the turn and is re-raised by Run after
// the C call has returned (it never unwinds through C frames).
func (g *Generation) Run(ctx context.Context, onPiece func(Piece) error) (FinishReason, error) {
	state := &runState{onPiece: onPiece}
	handle := cgo.NewHandle(state)
	defer handle.Delete()
	var finish FinishReason
	err := g.with("run", func(p *C.m3_generation) error {
		if g.finish != FinishNone {
			finish = g.finish
			return nil
		}
		if err := ctx.Err(); err != nil {
			_, err = g.nextLocked(ctx, p) // ends the turn as cancelled
			finish = g.finish
			return err
		}
		stop := watch(ctx, p)
		var fin C.m3_finish_reason
		err := call("run", func() C.m3_status { return C.m3go_run(p, C.uintptr_t(handle), &fin) })
		stop()
		if err != nil {
			return err
		}
		finish = FinishReason(fin)
		g.finish = finish
		if state.err != nil {
			return state.err
		}
		if finish == FinishCancelled && ctx.Err() != nil {
			return ctx.Err()
		}
		return nil
	})
	if state.didPanic {
		panic(state.panicked)
	}
	return finish, err
}
