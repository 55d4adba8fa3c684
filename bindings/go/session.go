package mamba3rt

/*
#include "mamba3rt.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"sync"
	"unsafe"
)

// LogitsMode selects which logits FeedLogits returns (m3_logits_mode).
type LogitsMode int

// The logits modes of include/mamba3rt.h.
const (
	LogitsNone LogitsMode = C.M3_LOGITS_NONE // only update the state
	LogitsLast LogitsMode = C.M3_LOGITS_LAST // one row: the last position
	LogitsAll  LogitsMode = C.M3_LOGITS_ALL  // one row per fed token
)

// StatePart is a part of one layer's state (m3_state_part).
type StatePart int

// The state parts of include/mamba3rt.h.
const (
	StateAngle StatePart = C.M3_STATE_ANGLE // [n_heads, n_rope_angles]
	StateSSM   StatePart = C.M3_STATE_SSM   // [n_heads, headdim, d_state]
	StateK     StatePart = C.M3_STATE_K     // [mimo_rank, n_heads, d_state]
	StateV     StatePart = C.M3_STATE_V     // [n_heads, headdim]
)

// Session is one stream's fixed-size recurrent state (m3_session). The C API lets one
// goroutine at a time use a session (a concurrent call fails with StatusSessionBusy);
// different sessions may be used concurrently. A failed call leaves the session unchanged.
type Session struct {
	mu          sync.RWMutex // Close takes it for writing, every other method for reading
	ptr         *C.m3_session
	vocabPadded int
	generations int // open generations on this session, under mu
}

// NewSession creates a session with a zero state.
func (m *Model) NewSession() (*Session, error) {
	padded, err := m.Info(InfoVocabPadded)
	if err != nil {
		return nil, err
	}
	s := &Session{vocabPadded: int(padded)}
	if err := m.with("create session", func(p *C.m3_model) C.m3_status { return C.m3_session_create(p, &s.ptr) }); err != nil {
		return nil, err
	}
	runtime.SetFinalizer(s, (*Session).Close)
	return s, nil
}

func (s *Session) with(op string, f func(p *C.m3_session) C.m3_status) error {
	if s == nil {
		return closedError(op, "nil session")
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.ptr == nil {
		return closedError(op, "session")
	}
	err := call(op, func() C.m3_status { return f(s.ptr) })
	runtime.KeepAlive(s)
	return err
}

// Close frees the session. It fails while a generation on it is open (close that first).
// Calling it again does nothing.
func (s *Session) Close() error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ptr == nil {
		return nil
	}
	if s.generations > 0 {
		return invalidArgument("close session", fmt.Sprintf("%d generation(s) on this session are still open", s.generations))
	}
	C.m3_session_free(s.ptr)
	s.ptr = nil
	runtime.SetFinalizer(s, nil)
	return nil
}

// VocabPadded is the number of floats in each logits row.
func (s *Session) VocabPadded() int {
	if s == nil {
		return 0
	}
	return s.vocabPadded
}

// Reset zeroes the state, as if just created.
func (s *Session) Reset() error {
	return s.with("reset", func(p *C.m3_session) C.m3_status { return C.m3_session_reset(p) })
}

// Feed feeds tokens (prefill), continuing from the current state, without logits.
func (s *Session) Feed(tokens []int32) error {
	_, err := s.FeedLogits(tokens, LogitsNone)
	return err
}

// FeedLogits feeds tokens and returns the logits rows mode selects, VocabPadded floats each.
// Feeding A then B equals feeding A+B.
func (s *Session) FeedLogits(tokens []int32, mode LogitsMode) ([]float32, error) {
	if s == nil {
		return nil, closedError("feed", "nil session")
	}
	rows := 0
	switch mode {
	case LogitsLast:
		rows = 1
	case LogitsAll:
		rows = len(tokens)
	}
	logits := make([]float32, rows*s.vocabPadded)
	err := s.with("feed", func(p *C.m3_session) C.m3_status {
		return C.m3_session_feed(p, tokensPtr(tokens), C.size_t(len(tokens)), C.m3_logits_mode(mode),
			floatsPtr(logits), C.size_t(len(logits)))
	})
	if err != nil {
		return nil, err
	}
	return logits, nil
}

// Step decodes one token and returns its logits row.
func (s *Session) Step(token int32) ([]float32, error) {
	if s == nil {
		return nil, closedError("step", "nil session")
	}
	logits := make([]float32, s.vocabPadded)
	err := s.with("step", func(p *C.m3_session) C.m3_status {
		return C.m3_session_step(p, C.int32_t(token), floatsPtr(logits), C.size_t(len(logits)))
	})
	if err != nil {
		return nil, err
	}
	return logits, nil
}

// NTokens is the number of tokens the state has absorbed since creation or Reset.
func (s *Session) NTokens() (int64, error) {
	var n C.int64_t
	err := s.with("n_tokens", func(p *C.m3_session) C.m3_status { return C.m3_session_n_tokens(p, &n) })
	return int64(n), err
}

// Snapshot returns the state as a self-describing blob for Restore on any session of the
// same model.
func (s *Session) Snapshot() ([]byte, error) {
	return twoCallBytes(0, func(buf *C.char, capacity C.size_t, n *C.size_t) error {
		return s.with("snapshot", func(p *C.m3_session) C.m3_status {
			return C.m3_session_save(p, unsafe.Pointer(buf), capacity, n)
		})
	})
}

// Restore restores a Snapshot. A blob of another model fails with StatusModelMismatch, a
// damaged one with StatusFormat.
func (s *Session) Restore(blob []byte) error {
	return s.with("restore", func(p *C.m3_session) C.m3_status {
		return C.m3_session_restore(p, unsafe.Pointer(bytesPtr(blob)), C.size_t(len(blob)))
	})
}

// Fork returns a new, independent session holding a copy of this state.
func (s *Session) Fork() (*Session, error) {
	if s == nil {
		return nil, closedError("fork", "nil session")
	}
	f := &Session{vocabPadded: s.vocabPadded}
	if err := s.with("fork", func(p *C.m3_session) C.m3_status { return C.m3_session_fork(p, &f.ptr) }); err != nil {
		return nil, err
	}
	runtime.SetFinalizer(f, (*Session).Close)
	return f, nil
}

// ReadState returns one part of one layer's state as float32 (experimental in the C API).
func (s *Session) ReadState(layer int32, part StatePart) ([]float32, error) {
	return twoCallFloats(0, func(buf *C.float, capacity C.size_t, n *C.size_t) error {
		return s.with("read state", func(p *C.m3_session) C.m3_status {
			return C.m3_session_read_state(p, C.int32_t(layer), C.m3_state_part(part), buf, capacity, n)
		})
	})
}

// DecodeBatch runs one decode step for several sessions of the same model in one batched
// call: tokens[i] goes to sessions[i]. It returns one logits row per session, in order. On
// error no session is changed.
func DecodeBatch(sessions []*Session, tokens []int32) ([]float32, error) {
	const op = "decode batch"
	if len(sessions) != len(tokens) {
		return nil, invalidArgument(op, fmt.Sprintf("%d sessions but %d tokens", len(sessions), len(tokens)))
	}
	if len(sessions) == 0 {
		return nil, invalidArgument(op, "no sessions")
	}
	seen := make(map[*Session]bool, len(sessions))
	pointers := make([]*C.m3_session, len(sessions))
	for i, s := range sessions {
		if s == nil {
			return nil, invalidArgument(op, fmt.Sprintf("sessions[%d] is nil", i))
		}
		if seen[s] {
			return nil, invalidArgument(op, fmt.Sprintf("sessions[%d] appears twice in the batch", i))
		}
		seen[s] = true
		s.mu.RLock()
		defer s.mu.RUnlock()
		if s.ptr == nil {
			return nil, closedError(op, fmt.Sprintf("sessions[%d]", i))
		}
		pointers[i] = s.ptr
	}
	logits := make([]float32, len(sessions)*sessions[0].vocabPadded)
	err := call(op, func() C.m3_status {
		return C.m3_decode_batch(&pointers[0], tokensPtr(tokens), C.size_t(len(sessions)), floatsPtr(logits), C.size_t(len(logits)))
	})
	runtime.KeepAlive(sessions)
	if err != nil {
		return nil, err
	}
	return logits, nil
}
