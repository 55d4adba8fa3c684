package mamba3rt

/*
#include "mamba3rt.h"
*/
import "C"

import (
	"errors"
	"unsafe"
)

// Helpers for passing Go memory to C for the duration of one call (cgo's pointer rules:
// these slices hold no Go pointers) and for the C API's two-call pattern.

func isBufferTooSmall(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == StatusBufferTooSmall
}

// bytesPtr is the address of b's first byte, or NULL when b is empty.
func bytesPtr(b []byte) *C.char {
	if len(b) == 0 {
		return nil
	}
	return (*C.char)(unsafe.Pointer(&b[0]))
}

// tokensPtr is the address of the first token, or NULL when there is none.
func tokensPtr(t []int32) *C.int32_t {
	if len(t) == 0 {
		return nil
	}
	return (*C.int32_t)(unsafe.Pointer(&t[0]))
}

// floatsPtr is the address of the first float, or NULL when there is none.
func floatsPtr(f []float32) *C.float {
	if len(f) == 0 {
		return nil
	}
	return (*C.float)(unsafe.Pointer(&f[0]))
}

func cBool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// twoCallBytes calls f with a buffer of guess bytes, and again with the needed size if that
// was too small.
func twoCallBytes(guess int, f func(buf *C.char, capacity C.size_t, n *C.size_t) error) ([]byte, error) {
	buf := make([]byte, guess+1) // never empty: &buf[0] is always valid
	var n C.size_t
	err := f(bytesPtr(buf), C.size_t(len(buf)), &n)
	if isBufferTooSmall(err) && int(n) > len(buf) {
		buf = make([]byte, n)
		err = f(bytesPtr(buf), C.size_t(len(buf)), &n)
	}
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

// twoCallFloats is twoCallBytes for float32 output.
func twoCallFloats(guess int, f func(buf *C.float, capacity C.size_t, n *C.size_t) error) ([]float32, error) {
	buf := make([]float32, guess+1)
	var n C.size_t
	err := f(floatsPtr(buf), C.size_t(len(buf)), &n)
	if isBufferTooSmall(err) && int(n) > len(buf) {
		buf = make([]float32, n)
		err = f(floatsPtr(buf), C.size_t(len(buf)), &n)
	}
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}
