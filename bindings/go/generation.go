package mamba3rt

/*
#include "mamba3rt.h"
*/
import "C"

import (
	"context"
	"io"
	"runtime"
	"sync"
)

// FinishReason says why a turn ended (m3_finish_reason).
type FinishReason int

// The finish reasons of include/mamba3rt.h.
const (
	FinishNone       FinishReason = C.M3_FINISH_NONE        // still running
	FinishEOS        FinishReason = C.M3_FINISH_EOS         // an end-of-sequence token (not emitted)
	FinishStopToken  FinishReason = C.M3_FINISH_STOP_TOKEN  // a stop token (not emitted)
	FinishStopString FinishReason = C.M3_FINISH_STOP_STRING // a stop string (cut from the output)
	FinishMaxTokens  FinishReason = C.M3_FINISH_MAX_TOKENS  // MaxTokens tokens this turn
	FinishCancelled  FinishReason = C.M3_FINISH_CANCELLED   // Cancel, a done context or a callback error
)

// String is a short lower-case name of the reason.
func (r FinishReason) String() string {
	switch r {
	case FinishNone:
		return "none"
	case FinishEOS:
		return "eos"
	case FinishStopToken:
		return "stop token"
	case FinishStopString:
		return "stop string"
	case FinishMaxTokens:
		return "max tokens"
	case FinishCancelled:
		return "cancelled"
	}
	return "unknown"
}

// GenStat names a generation statistic (m3_gen_stat).
type GenStat int

// The statistics of include/mamba3rt.h.
const (
	StatPromptTokens    GenStat = C.M3_STAT_PROMPT_TOKENS    // tokens fed
	StatGeneratedTokens GenStat = C.M3_STAT_GENERATED_TOKENS // tokens produced
	StatTTFTMs          GenStat = C.M3_STAT_TTFT_MS          // first call to first token, ms
	StatPrefillTokS     GenStat = C.M3_STAT_PREFILL_TOK_S    // fed tokens per second of feeding
	StatDecodeTokS      GenStat = C.M3_STAT_DECODE_TOK_S     // produced tokens per second
)

// Piece is one streamed piece of output.
type Piece struct {
	// Token is the token produced, or -1 for a final flushed piece.
	Token int32
	// Text holds whole UTF-8 characters only and never (a prefix of) a pending stop string,
	// so it can be empty while text is held back.
	Text string
}

// Generation streams output from one session (m3_generation). Input pushed before the first
// token is the prompt; input pushed later is fed before the next token, and pushing after a
// turn finished starts a new turn. Its methods serialise themselves, so a Generation may be
// shared by goroutines, but the session must not be used through other calls while a
// generation call runs.
type Generation struct {
	life    sync.RWMutex // Close takes it for writing; every other method, Cancel included, for reading
	op      sync.Mutex   // serialises the methods that use the generation (all but Cancel)
	ptr     *C.m3_generation
	session *Session // kept alive (and open) while the generation exists
	finish  FinishReason
	buf     []byte
}

// NewGeneration starts a generation on this session with the given options. The session
// cannot be closed until the generation is.
func (s *Session) NewGeneration(options ...GenOption) (*Generation, error) {
	if s == nil {
		return nil, closedError("create generation", "nil session")
	}
	var params *C.m3_gen_params
	if err := call("generation params", func() C.m3_status { return C.m3_gen_params_create(&params) }); err != nil {
		return nil, err
	}
	defer C.m3_gen_params_destroy(params)
	for _, o := range options {
		if err := o.apply(params); err != nil {
			return nil, err
		}
	}
	g := &Generation{session: s, buf: make([]byte, 256)}
	s.mu.Lock() // the generation count changes under the write lock
	defer s.mu.Unlock()
	if s.ptr == nil {
		return nil, closedError("create generation", "session")
	}
	if err := call("create generation", func() C.m3_status { return C.m3_generation_create(s.ptr, params, &g.ptr) }); err != nil {
		return nil, err
	}
	s.generations++
	runtime.SetFinalizer(g, (*Generation).Close)
	return g, nil
}

// Close frees the generation (cancelling a call in progress first). Calling it again does
// nothing.
func (g *Generation) Close() error {
	if g == nil {
		return nil
	}
	g.Cancel()
	g.life.Lock()
	defer g.life.Unlock()
	if g.ptr == nil {
		return nil
	}
	C.m3_generation_free(g.ptr)
	g.ptr = nil
	runtime.SetFinalizer(g, nil)
	g.session.mu.Lock()
	g.session.generations--
	g.session.mu.Unlock()
	return nil
}

// with runs f on the live handle, serialised with the other methods.
func (g *Generation) with(op string, f func(p *C.m3_generation) error) error {
	if g == nil {
		return closedError(op, "nil generation")
	}
	g.op.Lock()
	defer g.op.Unlock()
	g.life.RLock()
	defer g.life.RUnlock()
	if g.ptr == nil {
		return closedError(op, "generation")
	}
	err := f(g.ptr)
	runtime.KeepAlive(g)
	return err
}

// PushText appends UTF-8 text (the model needs a tokenizer). Empty text is an error.
func (g *Generation) PushText(text string) error {
	b := []byte(text)
	return g.with("push text", func(p *C.m3_generation) error {
		err := call("push text", func() C.m3_status { return C.m3_generation_push_text(p, bytesPtr(b), C.size_t(len(b))) })
		if err == nil {
			g.finish = FinishNone
		}
		return err
	})
}

// PushTokens appends token ids (each in 0 .. vocab size - 1).
func (g *Generation) PushTokens(tokens []int32) error {
	return g.with("push tokens", func(p *C.m3_generation) error {
		err := call("push tokens", func() C.m3_status {
			return C.m3_generation_push_tokens(p, tokensPtr(tokens), C.size_t(len(tokens)))
		})
		if err == nil {
			g.finish = FinishNone
		}
		return err
	})
}

// Cancel asks a running call to stop; it takes effect between tokens and between prefill
// chunks, and the turn then finishes with FinishCancelled. Safe from any goroutine.
func (g *Generation) Cancel() {
	if g == nil {
		return
	}
	g.life.RLock()
	defer g.life.RUnlock()
	if g.ptr != nil {
		C.m3_generation_cancel(g.ptr)
	}
}

// Finish is why the last turn ended, or FinishNone while it runs.
func (g *Generation) Finish() FinishReason {
	if g == nil {
		return FinishNone
	}
	g.op.Lock()
	defer g.op.Unlock()
	return g.finish
}

// Stat returns one statistic since the generation was created.
func (g *Generation) Stat(stat GenStat) (float64, error) {
	var v C.double
	err := g.with("stat", func(p *C.m3_generation) error {
		return call("stat", func() C.m3_status { return C.m3_generation_stat(p, C.m3_gen_stat(stat), &v) })
	})
	return float64(v), err
}

// Session is the session this generation runs on.
func (g *Generation) Session() *Session {
	if g == nil {
		return nil
	}
	return g.session
}

// watch cancels the generation p when ctx is done, until the returned stop function is
// called (which waits for the watcher, so p is never used after stop returns).
func watch(ctx context.Context, p *C.m3_generation) (stop func()) {
	done := ctx.Done()
	if done == nil {
		return func() {}
	}
	quit := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		select {
		case <-done:
			C.m3_generation_cancel(p)
		case <-quit:
		}
	}()
	return func() {
		close(quit)
		<-exited
	}
}

// step is one m3_generation_next call, growing the piece buffer when it is too small.
func (g *Generation) step(p *C.m3_generation) (token int32, text string, finish FinishReason, err error) {
	for {
		var tok C.int32_t
		var n C.size_t
		var fin C.m3_finish_reason
		err = call("next", func() C.m3_status {
			return C.m3_generation_next(p, &tok, bytesPtr(g.buf), C.size_t(len(g.buf)), &n, &fin)
		})
		if isBufferTooSmall(err) && int(n) > len(g.buf) {
			g.buf = make([]byte, n) // nothing was consumed: ask again
			continue
		}
		if err != nil {
			return -1, "", FinishNone, err
		}
		return int32(tok), string(g.buf[:n]), FinishReason(fin), nil
	}
}

// Next returns the next piece of the current turn. It returns io.EOF once the turn has
// finished (Finish says why) and ctx.Err() if ctx is done, which also ends the turn as
// FinishCancelled. Steps that carry neither a token nor text are skipped.
func (g *Generation) Next(ctx context.Context) (Piece, error) {
	var piece Piece
	err := g.with("next", func(p *C.m3_generation) error {
		var err error
		piece, err = g.nextLocked(ctx, p)
		return err
	})
	return piece, err
}

func (g *Generation) nextLocked(ctx context.Context, p *C.m3_generation) (Piece, error) {
	if g.finish != FinishNone {
		return Piece{}, io.EOF
	}
	if err := ctx.Err(); err != nil {
		// End the turn now, so that no cancellation is left pending for a later call.
		C.m3_generation_cancel(p)
		if _, _, finish, stepErr := g.step(p); stepErr == nil {
			g.finish = finish
		}
		return Piece{}, err
	}
	stop := watch(ctx, p)
	defer stop()
	for {
		token, text, finish, err := g.step(p)
		if err != nil {
			return Piece{}, err
		}
		g.finish = finish
		if finish == FinishCancelled && ctx.Err() != nil {
			return Piece{}, ctx.Err()
		}
		if token >= 0 || text != "" {
			return Piece{Token: token, Text: text}, nil
		}
		if finish != FinishNone {
			return Piece{}, io.EOF
		}
	}
}
