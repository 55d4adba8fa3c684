package mamba3rt

/*
#include "mamba3rt.h"
*/
import "C"

import (
	"math"
	"runtime"
	"sync"
	"time"
)

// EngineStat names an engine statistic (m3_engine_stat_key).
type EngineStat int

// The engine statistics of include/mamba3rt.h.
const (
	EngineLiveStreams     EngineStat = C.M3_ENGINE_LIVE_STREAMS     // submitted and not yet closed
	EngineRunningStreams  EngineStat = C.M3_ENGINE_RUNNING_STREAMS  // in the last step
	EngineWaitingStreams  EngineStat = C.M3_ENGINE_WAITING_STREAMS  // with work, left out by the max batch
	EnginePausedStreams   EngineStat = C.M3_ENGINE_PAUSED_STREAMS   // with work, left out because their reader is behind
	EngineSteps           EngineStat = C.M3_ENGINE_STEPS            // scheduler steps run
	EngineGeneratedTokens EngineStat = C.M3_ENGINE_GENERATED_TOKENS // tokens sampled, all streams
	EnginePromptTokens    EngineStat = C.M3_ENGINE_PROMPT_TOKENS    // input tokens fed, all streams
	EngineLastBatch       EngineStat = C.M3_ENGINE_LAST_BATCH       // streams in the last batched decode
)

// EngineOption is an option for Model.NewEngine (one setter of m3_engine_params). Defaults:
// 256 streams decoded together, 4096 live streams, prompt chunks of 256 tokens per stream and
// 512 per step, 64 buffered output events per stream. Out-of-range values make NewEngine fail
// with the library's message.
type EngineOption struct {
	apply func(p *C.m3_engine_params) error
}

// engineOption wraps one C setter of an int32 option; values beyond int32 are passed as -1,
// so that the library rejects them with its message.
func engineOption(name string, n int, set func(p *C.m3_engine_params, v C.int32_t) C.m3_status) EngineOption {
	return EngineOption{func(p *C.m3_engine_params) error {
		v := C.int32_t(-1)
		if n >= math.MinInt32 && n <= math.MaxInt32 {
			v = C.int32_t(n)
		}
		return call(name, func() C.m3_status { return set(p, v) })
	}}
}

// WithMaxBatch sets how many streams are decoded together in one step (1 .. 65536); more
// runnable streams wait their turn in submission order.
func WithMaxBatch(n int) EngineOption {
	return engineOption("max batch", n, func(p *C.m3_engine_params, v C.int32_t) C.m3_status {
		return C.m3_engine_params_set_max_batch(p, v)
	})
}

// WithMaxStreams sets how many streams may be live at once (1 .. 2^24); Submit beyond it fails
// with StatusLimitExceeded.
func WithMaxStreams(n int) EngineOption {
	return engineOption("max streams", n, func(p *C.m3_engine_params, v C.int32_t) C.m3_status {
		return C.m3_engine_params_set_max_streams(p, v)
	})
}

// WithPrefillChunk sets the prompt tokens per prefill call of one stream.
func WithPrefillChunk(tokens int) EngineOption {
	return engineOption("prefill chunk", tokens, func(p *C.m3_engine_params, v C.int32_t) C.m3_status {
		return C.m3_engine_params_set_prefill_chunk(p, v)
	})
}

// WithPrefillBudget sets the prompt tokens per scheduler step over all streams, so that
// running streams keep a steady rate while new ones are admitted.
func WithPrefillBudget(tokens int) EngineOption {
	return engineOption("prefill budget", tokens, func(p *C.m3_engine_params, v C.int32_t) C.m3_status {
		return C.m3_engine_params_set_prefill_budget(p, v)
	})
}

// WithQueueCapacity sets the output events buffered per stream: a stream whose reader is that
// far behind pauses until the reader catches up.
func WithQueueCapacity(events int) EngineOption {
	return engineOption("queue capacity", events, func(p *C.m3_engine_params, v C.int32_t) C.m3_status {
		return C.m3_engine_params_set_queue_capacity(p, v)
	})
}

// Engine runs many concurrent streams on one model (m3_engine): one scheduler thread decodes
// every generating stream in one batched call per step and feeds new prompts in chunks.
// Batching does not change results: a stream produces what the same request gives alone
// through a Generation with the same options. An Engine is safe for concurrent use by
// multiple goroutines. It keeps the model's weights alive, so the model may be closed first.
type Engine struct {
	mu  sync.RWMutex // Close takes it for writing, every other method for reading
	ptr *C.m3_engine
}

// NewEngine starts an engine (and its scheduler thread) on this model.
func (m *Model) NewEngine(options ...EngineOption) (*Engine, error) {
	var params *C.m3_engine_params
	if len(options) > 0 {
		if err := call("engine params", func() C.m3_status { return C.m3_engine_params_create(&params) }); err != nil {
			return nil, err
		}
		defer C.m3_engine_params_destroy(params)
		for _, o := range options {
			if err := o.apply(params); err != nil {
				return nil, err
			}
		}
	}
	e := &Engine{}
	if err := m.with("create engine", func(p *C.m3_model) C.m3_status { return C.m3_engine_create(p, params, &e.ptr) }); err != nil {
		return nil, err
	}
	runtime.SetFinalizer(e, (*Engine).Close)
	return e, nil
}

func (e *Engine) with(op string, f func(p *C.m3_engine) C.m3_status) error {
	if e == nil {
		return closedError(op, "nil engine")
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.ptr == nil {
		return closedError(op, "engine")
	}
	err := call(op, func() C.m3_status { return f(e.ptr) })
	runtime.KeepAlive(e)
	return err
}

// Close stops the engine's scheduler. Its running streams end with FinishCancelled; they stay
// open (close them too), and pushing to them fails. Calling it again does nothing.
func (e *Engine) Close() error {
	if e == nil {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ptr != nil {
		C.m3_engine_free(e.ptr)
		e.ptr = nil
		runtime.SetFinalizer(e, nil)
	}
	return nil
}

// Submit starts a new stream with the given generation options, idle until input is pushed.
// Beyond the engine's maximum of live streams it fails with StatusLimitExceeded.
func (e *Engine) Submit(options ...GenOption) (*Stream, error) {
	return e.submit(nil, options)
}

// SubmitWithPrefix is Submit for a stream that starts from a copy of prefix's state, e.g. a
// system prompt fed once and shared by many streams. The session is not changed; it must not
// be used by another goroutine during the call.
func (e *Engine) SubmitWithPrefix(prefix *Session, options ...GenOption) (*Stream, error) {
	if prefix == nil {
		return nil, closedError("submit", "nil prefix session")
	}
	return e.submit(prefix, options)
}

func (e *Engine) submit(prefix *Session, options []GenOption) (*Stream, error) {
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
	var prefixPtr *C.m3_session
	if prefix != nil {
		prefix.mu.RLock()
		defer prefix.mu.RUnlock()
		if prefix.ptr == nil {
			return nil, closedError("submit", "prefix session")
		}
		prefixPtr = prefix.ptr
	}
	s := &Stream{engine: e, buf: make([]byte, 256)}
	err := e.with("submit", func(p *C.m3_engine) C.m3_status {
		return C.m3_engine_submit(p, params, prefixPtr, nil, nil, &s.ptr)
	})
	runtime.KeepAlive(prefix)
	if err != nil {
		return nil, err
	}
	runtime.SetFinalizer(s, (*Stream).Close)
	return s, nil
}

// Stat returns one statistic of the engine.
func (e *Engine) Stat(stat EngineStat) (int64, error) {
	var v C.int64_t
	err := e.with("engine stat", func(p *C.m3_engine) C.m3_status {
		return C.m3_engine_stat(p, C.m3_engine_stat_key(stat), &v)
	})
	return int64(v), err
}

// StreamEvent is one output event of a Stream.
type StreamEvent struct {
	// Token is the token produced, or -1 when there is none (a final flushed piece, or the end).
	Token int32
	// Text holds whole UTF-8 characters only and never (a prefix of) a pending stop string,
	// so it can be empty while text is held back.
	Text string
	// Finish is FinishNone while the turn runs, else why it ended (the event that reports
	// the finish may still carry a last piece).
	Finish FinishReason
}

// Stream is one generation request on an Engine (m3_stream). Input pushed before the first
// token is the prompt; input pushed later is fed before the next token, and pushing after a
// turn finished starts a new turn on the same state. Read its output with Next. Its methods
// may be called from any goroutine (Next calls are serialised); PushText, PushTokens, Cancel
// and Stat may run while another goroutine waits in Next.
type Stream struct {
	life   sync.RWMutex // Close takes it for writing; every other method, Cancel included, for reading
	op     sync.Mutex   // serialises Next (the piece buffer)
	ptr    *C.m3_stream
	engine *Engine // keeps the Engine value (and so its scheduler) from being finalized first
	buf    []byte
}

// Close cancels the stream (ending a Next in progress) and frees it; its state slot in the
// engine is released. Calling it again does nothing.
func (s *Stream) Close() error {
	if s == nil {
		return nil
	}
	s.Cancel()
	s.life.Lock()
	defer s.life.Unlock()
	if s.ptr != nil {
		C.m3_stream_free(s.ptr)
		s.ptr = nil
		runtime.SetFinalizer(s, nil)
	}
	return nil
}

func (s *Stream) with(op string, f func(p *C.m3_stream) error) error {
	if s == nil {
		return closedError(op, "nil stream")
	}
	s.life.RLock()
	defer s.life.RUnlock()
	if s.ptr == nil {
		return closedError(op, "stream")
	}
	err := f(s.ptr)
	runtime.KeepAlive(s)
	return err
}

// PushText appends UTF-8 text (the model needs a tokenizer). Empty text is an error. The
// first text pushed into a stream without prefix gets the tokenizer's special tokens unless
// AddSpecial(false) was given.
func (s *Stream) PushText(text string) error {
	b := []byte(text)
	return s.with("push text", func(p *C.m3_stream) error {
		return call("push text", func() C.m3_status { return C.m3_stream_push_text(p, bytesPtr(b), C.size_t(len(b))) })
	})
}

// PushTokens appends token ids (each in 0 .. vocab size - 1).
func (s *Stream) PushTokens(tokens []int32) error {
	return s.with("push tokens", func(p *C.m3_stream) error {
		return call("push tokens", func() C.m3_status {
			return C.m3_stream_push_tokens(p, tokensPtr(tokens), C.size_t(len(tokens)))
		})
	})
}

// Cancel asks the stream to stop its turn; it ends with FinishCancelled at the engine's next
// step. Input not yet fed stays pending for the next turn. Safe from any goroutine; a no-op
// once the stream is closed.
func (s *Stream) Cancel() {
	if s == nil {
		return
	}
	s.life.RLock()
	defer s.life.RUnlock()
	if s.ptr != nil {
		C.m3_stream_cancel(s.ptr)
	}
}

// Stat returns one statistic of the stream (StatTTFTMs: first push to first token).
func (s *Stream) Stat(stat GenStat) (float64, error) {
	var v C.double
	err := s.with("stream stat", func(p *C.m3_stream) error {
		return call("stream stat", func() C.m3_status { return C.m3_stream_stat(p, C.m3_gen_stat(stat), &v) })
	})
	return float64(v), err
}

// timeoutMillis is timeout in whole milliseconds, rounded up; a negative timeout is -1 (no limit).
func timeoutMillis(timeout time.Duration) C.int32_t {
	if timeout < 0 {
		return -1
	}
	ms := (timeout + time.Millisecond - 1) / time.Millisecond
	if ms > math.MaxInt32 {
		return math.MaxInt32
	}
	return C.int32_t(ms)
}

// Next waits up to timeout for the next output event (a negative timeout: no limit; 0: poll).
// If none came in time it returns an error that matches ErrTimeout (errors.Is). After a finish,
// and until new input is pushed, it returns that finish again at once (Token -1, empty Text).
// A stream the engine failed returns the error once, with Finish FinishCancelled.
func (s *Stream) Next(timeout time.Duration) (StreamEvent, error) {
	ev := StreamEvent{Token: -1}
	if s == nil {
		return ev, closedError("next", "nil stream")
	}
	s.op.Lock()
	defer s.op.Unlock()
	err := s.with("next", func(p *C.m3_stream) error {
		for {
			var tok C.int32_t = -1
			var n C.size_t
			var fin C.m3_finish_reason
			err := call("next", func() C.m3_status {
				return C.m3_stream_next(p, timeoutMillis(timeout), &tok, bytesPtr(s.buf), C.size_t(len(s.buf)), &n, &fin)
			})
			if isBufferTooSmall(err) && int(n) > len(s.buf) {
				s.buf = make([]byte, n) // the event was kept: ask again
				continue
			}
			ev.Finish = FinishReason(fin)
			if err != nil {
				return err
			}
			ev.Token = int32(tok)
			ev.Text = string(s.buf[:n])
			return nil
		}
	})
	return ev, err
}
