package mamba3rt

/*
#include <stdlib.h>
#include "mamba3rt.h"
*/
import "C"

import (
	"runtime"
	"sync"
	"unsafe"
)

// Tokenizer is a Hugging Face tokenizer.json byte-level BPE tokenizer (m3_tokenizer). It is
// immutable and safe for concurrent use. It is either loaded from a file (LoadTokenizer;
// Close frees it) or borrowed from a model (Model.Tokenizer; valid until the model closes).
type Tokenizer struct {
	mu    sync.RWMutex
	ptr   *C.m3_tokenizer
	model *Model // the owner of a borrowed tokenizer, nil for a loaded one
}

// LoadTokenizer loads a tokenizer.json file.
func LoadTokenizer(path string) (*Tokenizer, error) {
	if err := checkABI(); err != nil {
		return nil, err
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	t := &Tokenizer{}
	if err := call("load "+path, func() C.m3_status { return C.m3_tokenizer_load(cpath, &t.ptr) }); err != nil {
		return nil, err
	}
	runtime.SetFinalizer(t, (*Tokenizer).Close)
	return t, nil
}

// with runs f on the live handle: under this tokenizer's read lock and, for a borrowed one,
// its model's.
func (t *Tokenizer) with(op string, f func(p *C.m3_tokenizer) C.m3_status) error {
	if t == nil {
		return closedError(op, "nil tokenizer")
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.model != nil {
		t.model.mu.RLock()
		defer t.model.mu.RUnlock()
		if t.model.ptr == nil {
			return closedError(op, "the tokenizer's model")
		}
	}
	if t.ptr == nil {
		return closedError(op, "tokenizer")
	}
	err := call(op, func() C.m3_status { return f(t.ptr) })
	runtime.KeepAlive(t)
	return err
}

// Close frees a loaded tokenizer (a borrowed one is only detached). Calling it again does
// nothing.
func (t *Tokenizer) Close() error {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ptr != nil && t.model == nil {
		C.m3_tokenizer_free(t.ptr)
		runtime.SetFinalizer(t, nil)
	}
	t.ptr = nil
	return nil
}

// Encode returns the token ids of UTF-8 text; addSpecial applies the tokenizer's
// post-processor (e.g. a BOS token).
func (t *Tokenizer) Encode(text string, addSpecial bool) ([]int32, error) {
	bytes := []byte(text)
	ids := make([]int32, len(bytes)+8)
	var n C.size_t
	for {
		err := t.with("tokenize", func(p *C.m3_tokenizer) C.m3_status {
			return C.m3_tokenize(p, bytesPtr(bytes), C.size_t(len(bytes)), cBool(addSpecial),
				(*C.int32_t)(unsafe.Pointer(&ids[0])), C.size_t(len(ids)), &n)
		})
		if isBufferTooSmall(err) && int(n) > len(ids) {
			ids = make([]int32, n)
			continue
		}
		if err != nil {
			return nil, err
		}
		return ids[:n], nil
	}
}

// Decode returns the text of token ids (invalid UTF-8 becomes U+FFFD); skipSpecial leaves
// out special tokens.
func (t *Tokenizer) Decode(tokens []int32, skipSpecial bool) (string, error) {
	out, err := twoCallBytes(len(tokens)*8+16, func(buf *C.char, capacity C.size_t, n *C.size_t) error {
		return t.with("detokenize", func(p *C.m3_tokenizer) C.m3_status {
			return C.m3_detokenize(p, tokensPtr(tokens), C.size_t(len(tokens)), cBool(skipSpecial), buf, capacity, n)
		})
	})
	return string(out), err
}

// TokenBytes returns the raw bytes of one token (possibly part of a UTF-8 character).
func (t *Tokenizer) TokenBytes(token int32) ([]byte, error) {
	return twoCallBytes(32, func(buf *C.char, capacity C.size_t, n *C.size_t) error {
		return t.with("token bytes", func(p *C.m3_tokenizer) C.m3_status {
			return C.m3_token_bytes(p, C.int32_t(token), buf, capacity, n)
		})
	})
}

// VocabSize is one more than the largest token id.
func (t *Tokenizer) VocabSize() (int, error) {
	var n C.int32_t
	err := t.with("vocab size", func(p *C.m3_tokenizer) C.m3_status { return C.m3_tokenizer_vocab_size(p, &n) })
	return int(n), err
}
