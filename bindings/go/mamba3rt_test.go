package mamba3rt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func load(t *testing.T, options ...ModelOption) *Model {
	t.Helper()
	m, err := LoadModel(modelDir(), options...)
	if err != nil {
		t.Fatalf("loading %s: %v", modelDir(), err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func newSession(t *testing.T, m *Model) *Session {
	t.Helper()
	s, err := m.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("closing a session: %v", err)
		}
	})
	return s
}

// newGeneration registers its Close before the session's (cleanups run last-in first-out).
func newGeneration(t *testing.T, s *Session, options ...GenOption) *Generation {
	t.Helper()
	g, err := s.NewGeneration(options...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

// must returns v, or panics with err (which fails the test binary with a stack trace): it
// keeps the happy path of the tests readable.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func expectError(t *testing.T, err error, status Status, fragment string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("want *Error with %v mentioning %q, got %v", status, fragment, err)
	}
	if e.Status != status || !strings.Contains(e.Message, fragment) {
		t.Fatalf("want %v mentioning %q, got %v", status, fragment, err)
	}
	if !strings.Contains(err.Error(), status.String()) {
		t.Fatalf("Error() %q lacks the status name", err.Error())
	}
}

// collect pulls the current turn with Next.
func collect(t *testing.T, g *Generation) []Piece {
	t.Helper()
	var pieces []Piece
	for {
		p, err := g.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return pieces
		}
		if err != nil {
			t.Fatal(err)
		}
		pieces = append(pieces, p)
	}
}

func text(pieces []Piece) string {
	var b strings.Builder
	for _, p := range pieces {
		b.WriteString(p.Text)
	}
	return b.String()
}

func argmax(row []float32, vocab int) int32 {
	best := 0
	for i := 1; i < vocab; i++ {
		if row[i] > row[best] {
			best = i
		}
	}
	return int32(best)
}

func TestVersionAndABI(t *testing.T) {
	if ABIVersion() != 1 {
		t.Fatalf("ABI version %d", ABIVersion())
	}
	if len(strings.Split(Version(), ".")) < 3 {
		t.Fatalf("version %q", Version())
	}
	if BackendCPUReference.String() != "cpu-reference" || StatusFormat.String() != "M3_ERR_FORMAT" {
		t.Fatal("enum names differ from the library's")
	}
	if err := BackendCPU.Available(); err != nil {
		t.Fatal(err)
	}
}

func TestLoadErrorsCarryTheCMessage(t *testing.T) {
	_, err := LoadModel("/nonexistent/model-dir")
	expectError(t, err, StatusIO, "/nonexistent/model-dir")
	_, err = LoadModel(modelDir(), WithThreads(5000))
	expectError(t, err, StatusInvalidArgument, "n_threads")
	_, err = LoadTokenizer("/nonexistent/tokenizer.json")
	expectError(t, err, StatusIO, "tokenizer.json")
}

func TestModelInfoAndOptions(t *testing.T) {
	m := load(t, WithBackend(BackendCPU), WithThreads(1))
	if n := must(m.Info(InfoThreads)); n != 1 {
		t.Fatalf("threads %d", n)
	}
	if wt := must(m.WeightType()); wt != WeightF16 {
		t.Fatalf("the bundled model is stored as f16, got weight type %d", wt)
	}
	vocab := must(m.VocabSize())
	if padded := must(m.Info(InfoVocabPadded)); vocab <= 0 || int(padded) < vocab {
		t.Fatalf("vocab %d padded %d", vocab, padded)
	}
	if _, err := m.Info(InfoKey(999)); err == nil {
		t.Fatal("an unknown info key was accepted")
	}
	if name := must(m.DeviceName()); name != "CPU" {
		t.Fatalf("device name %q", name)
	}
}

func TestSessionAndTensorLimits(t *testing.T) {
	m := load(t, WithMaxSessions(2))
	if n := must(m.MaxSessions()); n != 2 {
		t.Fatalf("max sessions %d", n)
	}
	a := newSession(t, m)
	b := must(m.NewSession())
	if n := must(m.LiveSessions()); n != 2 {
		t.Fatalf("%d live sessions", n)
	}
	_, err := m.NewSession()
	expectError(t, err, StatusLimitExceeded, "max_sessions")
	_, err = a.Fork()
	expectError(t, err, StatusLimitExceeded, "max_sessions")
	e := newEngine(t, m)
	_, err = e.Submit()
	expectError(t, err, StatusLimitExceeded, "max_sessions")
	if n := must(m.Info(InfoLiveSessions)); n != 2 {
		t.Fatalf("%d live sessions after the failed creates", n)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if n := must(m.LiveSessions()); n != 1 {
		t.Fatalf("%d live sessions after a Close", n)
	}
	f := must(a.Fork()) // the place was released
	if n := must(m.LiveSessions()); n != 2 {
		t.Fatalf("%d live sessions after the fork", n)
	}
	f.Close()
	if n := must(load(t).MaxSessions()); n != 0 {
		t.Fatalf("default max sessions %d", n)
	}
	_, err = LoadModel(modelDir(), WithMaxSessions(-1))
	expectError(t, err, StatusInvalidArgument, "max_sessions")

	_, err = LoadModel(modelDir(), WithMaxTensorBytes(1))
	expectError(t, err, StatusLimitExceeded, "max_tensor_bytes")
	_, err = LoadModel(modelDir(), WithMaxTensorBytes(-1))
	expectError(t, err, StatusInvalidArgument, "max_bytes")
	load(t, WithMaxTensorBytes(0)) // no limit
}

func TestDeviceSelection(t *testing.T) {
	_, err := LoadModel(modelDir(), WithDevice(strings.Repeat("x", 256)))
	expectError(t, err, StatusInvalidArgument, "255")
	_, err = LoadModel(modelDir(), WithDevice("a\x00b"))
	expectError(t, err, StatusInvalidArgument, "NUL")
	// The CPU backends ignore the device.
	m := load(t, WithBackend(BackendCPU), WithDevice("no-such-gpu-7f3a"))
	if name := must(m.DeviceName()); name != "CPU" {
		t.Fatalf("device name %q", name)
	}
	if BackendVulkan.Available() != nil {
		return
	}
	_, err = LoadModel(modelDir(), WithBackend(BackendVulkan), WithDevice("no-such-gpu-7f3a"))
	expectError(t, err, StatusBackendUnavailable, "no-such-gpu-7f3a")
	v := load(t, WithBackend(BackendVulkan), WithDevice("0"))
	if name := must(v.DeviceName()); name == "" {
		t.Fatal("empty device name")
	}
}

func TestTokenizerRoundTrip(t *testing.T) {
	m := load(t)
	tok := must(m.Tokenizer())
	const s = "The president said that naïve café-goers like “quotes”."
	ids := must(tok.Encode(s, false))
	if len(ids) == 0 {
		t.Fatal("no ids")
	}
	if got := must(tok.Decode(ids, false)); got != s {
		t.Fatalf("decode: %q", got)
	}
	var joined []byte
	for _, id := range ids {
		joined = append(joined, must(tok.TokenBytes(id))...)
	}
	if string(joined) != s {
		t.Fatalf("token bytes: %q", joined)
	}
	vocab := must(tok.VocabSize())
	_, err := tok.TokenBytes(int32(vocab))
	expectError(t, err, StatusInvalidArgument, "out of range")

	owned, err := LoadTokenizer(filepath.Join(modelDir(), "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer owned.Close()
	if got := must(owned.Encode(s, false)); len(got) != len(ids) || got[0] != ids[0] {
		t.Fatalf("owned tokenizer: %v vs %v", got, ids)
	}
}

func TestClosedHandlesGiveErrors(t *testing.T) {
	m, err := LoadModel(modelDir())
	if err != nil {
		t.Fatal(err)
	}
	tok := must(m.Tokenizer())
	s := must(m.NewSession())
	g := must(s.NewGeneration(Greedy()))

	err = s.Close()
	expectError(t, err, StatusInvalidArgument, "still open")
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if err := g.PushText("x"); !errors.Is(err, ErrClosed) {
		t.Fatalf("push on a closed generation: %v", err)
	}
	if _, err := g.Next(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("next on a closed generation: %v", err)
	}
	g.Cancel() // a no-op, not a crash
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Step(1); !errors.Is(err, ErrClosed) {
		t.Fatalf("step on a closed session: %v", err)
	}
	if _, err := s.NewGeneration(); !errors.Is(err, ErrClosed) {
		t.Fatalf("generation on a closed session: %v", err)
	}
	m.Close()
	if _, err := m.Info(InfoNLayer); !errors.Is(err, ErrClosed) {
		t.Fatalf("info on a closed model: %v", err)
	}
	if _, err := tok.Encode("x", false); !errors.Is(err, ErrClosed) {
		t.Fatalf("a borrowed tokenizer after its model closed: %v", err)
	}
	if _, err := m.NewSession(); !errors.Is(err, ErrClosed) {
		t.Fatalf("session on a closed model: %v", err)
	}
	// nil values give the same error, never a panic.
	var nilModel *Model
	var nilSession *Session
	var nilGeneration *Generation
	if _, err := nilModel.Info(InfoNLayer); !errors.Is(err, ErrClosed) {
		t.Fatalf("nil model: %v", err)
	}
	if _, err := nilSession.Step(1); !errors.Is(err, ErrClosed) {
		t.Fatalf("nil session: %v", err)
	}
	if _, err := nilGeneration.Next(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("nil generation: %v", err)
	}
	if _, err := DecodeBatch([]*Session{nil}, []int32{1}); err == nil {
		t.Fatal("a nil session in a batch was accepted")
	}
	// Close twice is fine.
	for _, c := range []interface{ Close() error }{g, s, tok, m} {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFeedEqualsStepsAndBatch(t *testing.T) {
	m := load(t)
	padded := int(must(m.Info(InfoVocabPadded)))
	tokens := must(must(m.Tokenizer()).Encode("It was a bright cold day", false))

	all := newSession(t, m)
	rows := must(all.FeedLogits(tokens, LogitsAll))
	if len(rows) != len(tokens)*padded {
		t.Fatalf("%d logits", len(rows))
	}
	stepped := newSession(t, m)
	for i, tok := range tokens {
		row := must(stepped.Step(tok))
		for j := range row {
			if d := math.Abs(float64(row[j] - rows[i*padded+j])); d > 1e-3 {
				t.Fatalf("position %d column %d differs by %g", i, j, d)
			}
		}
	}
	if n := must(stepped.NTokens()); n != int64(len(tokens)) {
		t.Fatalf("n_tokens %d", n)
	}

	a, b := newSession(t, m), newSession(t, m)
	if err := a.Feed(tokens[:2]); err != nil {
		t.Fatal(err)
	}
	if err := b.Feed(tokens[:3]); err != nil {
		t.Fatal(err)
	}
	aAlone, bAlone := must(a.Fork()), must(b.Fork())
	defer aAlone.Close()
	defer bAlone.Close()
	batched := must(DecodeBatch([]*Session{a, b}, []int32{tokens[2], tokens[3]}))
	expected := append(must(aAlone.Step(tokens[2])), must(bAlone.Step(tokens[3]))...)
	for i := range expected {
		if d := math.Abs(float64(batched[i] - expected[i])); d > 1e-3 {
			t.Fatalf("batched logit %d differs by %g", i, d)
		}
	}
	_, err := DecodeBatch([]*Session{a, a}, []int32{1, 2})
	expectError(t, err, StatusInvalidArgument, "twice")
	_, err = DecodeBatch([]*Session{a}, []int32{1, 2})
	expectError(t, err, StatusInvalidArgument, "tokens")
}

func TestSnapshotRestoreFork(t *testing.T) {
	m := load(t)
	s := newSession(t, m)
	if err := s.Feed([]int32{10, 20, 30}); err != nil {
		t.Fatal(err)
	}
	blob := must(s.Snapshot())
	if int64(len(blob)) != must(m.Info(InfoStateBlobBytes)) {
		t.Fatalf("snapshot of %d bytes", len(blob))
	}
	fork := must(s.Fork())
	defer fork.Close()
	after := must(s.Step(40))
	if err := s.Restore(blob); err != nil {
		t.Fatal(err)
	}
	again := must(s.Step(40))
	forked := must(fork.Step(40))
	for i := range after {
		if again[i] != after[i] || forked[i] != after[i] {
			t.Fatalf("logit %d: %g, restored %g, fork %g", i, after[i], again[i], forked[i])
		}
	}
	if len(must(fork.ReadState(0, StateSSM))) == 0 {
		t.Fatal("empty state part")
	}
	damaged := append([]byte(nil), blob...)
	damaged[len(damaged)-1] ^= 0xff
	before := must(s.NTokens())
	expectError(t, s.Restore(damaged), StatusFormat, "")
	expectError(t, s.Restore([]byte("not a blob")), StatusFormat, "")
	expectError(t, s.Restore(nil), StatusInvalidArgument, "")
	if must(s.NTokens()) != before {
		t.Fatal("a failed restore changed the session")
	}
	if err := s.Reset(); err != nil || must(s.NTokens()) != 0 {
		t.Fatalf("reset: %v", err)
	}
}

func TestBadTokensLeaveTheSessionUnchanged(t *testing.T) {
	m := load(t)
	vocab := must(m.VocabSize())
	s := newSession(t, m)
	if err := s.Feed([]int32{1, 2}); err != nil {
		t.Fatal(err)
	}
	expectError(t, s.Feed([]int32{3, int32(vocab)}), StatusInvalidArgument, "out of range")
	_, err := s.Step(-5)
	expectError(t, err, StatusInvalidArgument, "")
	if n := must(s.NTokens()); n != 2 {
		t.Fatalf("n_tokens %d after failed calls", n)
	}
}

// Greedy generation against an independent computation: argmax over the plain session API's
// logits, token by token.
func TestGreedyGenerationEqualsArgmaxOfLogits(t *testing.T) {
	m := load(t)
	tok := must(m.Tokenizer())
	vocab := must(m.VocabSize())
	const prompt = "The president said that"

	g := newGeneration(t, newSession(t, m), Greedy(), MaxTokens(12))
	if err := g.PushText(prompt); err != nil {
		t.Fatal(err)
	}
	pieces := collect(t, g)
	if g.Finish() != FinishMaxTokens {
		t.Fatalf("finish %v", g.Finish())
	}
	var got []int32
	for _, p := range pieces {
		if p.Token >= 0 {
			got = append(got, p.Token)
		}
	}

	ref := newSession(t, m)
	logits := must(ref.FeedLogits(must(tok.Encode(prompt, true)), LogitsLast))
	var want []int32
	for i := 0; i < 12; i++ {
		next := argmax(logits, vocab)
		want = append(want, next)
		logits = must(ref.FeedLogits([]int32{next}, LogitsLast)) // as the generation feeds it
	}
	if len(got) != len(want) {
		t.Fatalf("tokens %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("tokens %v, want %v", got, want)
		}
	}
	if decoded := must(tok.Decode(want, false)); text(pieces) != decoded {
		t.Fatalf("text %q, decoded %q", text(pieces), decoded)
	}
}

func TestNextStreamAndRunAgree(t *testing.T) {
	m := load(t)
	start := func() *Generation {
		g := newGeneration(t, newSession(t, m), Greedy(), MaxTokens(15))
		if err := g.PushText("Once upon a time"); err != nil {
			t.Fatal(err)
		}
		return g
	}
	pulled := collect(t, start())

	var streamed []Piece
	pieces, wait := start().Stream(context.Background())
	for p := range pieces {
		streamed = append(streamed, p)
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}

	var called []Piece
	g := start()
	finish, err := g.Run(context.Background(), func(p Piece) error {
		called = append(called, p)
		return nil
	})
	if err != nil || finish != FinishMaxTokens {
		t.Fatalf("run: %v %v", finish, err)
	}
	if text(pulled) != text(streamed) || text(pulled) != text(called) || len(pulled) != len(called) {
		t.Fatalf("next %q, stream %q, run %q", text(pulled), text(streamed), text(called))
	}
	if _, err := g.Next(context.Background()); !errors.Is(err, io.EOF) {
		t.Fatalf("after the turn: %v", err)
	}
}

func TestContextCancelsStreamNextAndRun(t *testing.T) {
	m := load(t)
	long := func() *Generation {
		g := newGeneration(t, newSession(t, m), Greedy(), MaxTokens(100000), IgnoreEOS())
		if err := g.PushText("The"); err != nil {
			t.Fatal(err)
		}
		return g
	}

	// Stream: cancel after three pieces.
	g := long()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pieces, wait := g.Stream(ctx)
	n := 0
	for range pieces {
		n++
		if n == 3 {
			cancel()
		}
	}
	if err := wait(); !errors.Is(err, context.Canceled) {
		t.Fatalf("stream: %v", err)
	}
	if g.Finish() != FinishCancelled {
		t.Fatalf("finish %v", g.Finish())
	}
	if gen := must(g.Stat(StatGeneratedTokens)); gen >= 100000 {
		t.Fatalf("%g tokens generated", gen)
	}
	// A new turn after the cancelled one runs normally.
	if err := g.PushText(" and"); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Next(context.Background()); err != nil {
		t.Fatal(err)
	}

	// Next with a context that is already done ends the turn.
	g = long()
	done, cancelNow := context.WithCancel(context.Background())
	cancelNow()
	if _, err := g.Next(done); !errors.Is(err, context.Canceled) {
		t.Fatalf("next: %v", err)
	}
	if _, err := g.Next(context.Background()); !errors.Is(err, io.EOF) || g.Finish() != FinishCancelled {
		t.Fatalf("after a cancelled next: %v %v", err, g.Finish())
	}

	// Run with a deadline, from another goroutine's point of view: the callback never stops it.
	g = long()
	deadline, cancelDeadline := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancelDeadline()
	finish, err := g.Run(deadline, func(Piece) error { return nil })
	if !errors.Is(err, context.DeadlineExceeded) || finish != FinishCancelled {
		t.Fatalf("run: %v %v", finish, err)
	}
}

func TestRunCallbackErrorAndPanic(t *testing.T) {
	m := load(t)
	g := newGeneration(t, newSession(t, m), Greedy(), MaxTokens(50))
	if err := g.PushText("The"); err != nil {
		t.Fatal(err)
	}
	stopErr := errors.New("enough")
	n := 0
	finish, err := g.Run(context.Background(), func(Piece) error {
		n++
		if n == 3 {
			return stopErr
		}
		return nil
	})
	if !errors.Is(err, stopErr) || finish != FinishCancelled || n != 3 {
		t.Fatalf("run: %v %v after %d pieces", finish, err, n)
	}

	if err := g.PushText(" next"); err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() {
			if r := recover(); r != "boom in callback" {
				t.Fatalf("recovered %v", r)
			}
		}()
		g.Run(context.Background(), func(Piece) error { panic("boom in callback") })
		t.Fatal("the callback's panic did not reach the caller")
	}()
	// Still usable.
	if err := g.PushText(" again"); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Next(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestMultiTurnAndStopString(t *testing.T) {
	m := load(t)
	s := newSession(t, m)
	g := newGeneration(t, s, Greedy(), MaxTokens(8))
	if err := g.PushText("The president said that"); err != nil {
		t.Fatal(err)
	}
	first := text(collect(t, g))
	if err := g.PushText(" and"); err != nil {
		t.Fatal(err)
	}
	if second := text(collect(t, g)); second == "" {
		t.Fatal("the second turn produced nothing")
	}
	if n := must(g.Session().NTokens()); n <= 8 {
		t.Fatalf("the session absorbed %d tokens", n)
	}

	words := strings.Fields(first)
	if len(words) < 3 {
		t.Fatalf("first turn %q", first)
	}
	stop := " " + words[2]
	want := first[:strings.Index(first, stop)]
	g2 := newGeneration(t, newSession(t, m), Greedy(), MaxTokens(8), StopString(stop))
	if err := g2.PushText("The president said that"); err != nil {
		t.Fatal(err)
	}
	if got := text(collect(t, g2)); got != want || g2.Finish() != FinishStopString {
		t.Fatalf("with stop %q: %q (%v), want %q", stop, got, g2.Finish(), want)
	}
}

func TestGenerationInputErrors(t *testing.T) {
	m := load(t)
	vocab := int32(must(m.VocabSize()))
	s := newSession(t, m)
	g := newGeneration(t, s, Greedy(), MaxTokens(4))
	_, err := g.Next(context.Background())
	expectError(t, err, StatusInvalidArgument, "push a prompt")
	expectError(t, g.PushText(""), StatusInvalidArgument, "empty")
	expectError(t, g.PushTokens([]int32{1, vocab + 7}), StatusInvalidArgument, "out of range")
	if err := g.PushTokens([]int32{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if n := len(collect(t, g)); n != 4 {
		t.Fatalf("%d pieces", n)
	}

	for _, c := range []struct {
		option   GenOption
		fragment string
	}{
		{TopP(0), "top_p"},
		{Temperature(float32(math.NaN())), "temperature"},
		{MaxTokens(-1), "max_tokens"},
		{StopString("a\x00b"), "NUL"},
		{StopString(""), "empty"},
		{StopToken(vocab + 1), "stop token"},
	} {
		_, err := s.NewGeneration(c.option)
		expectError(t, err, StatusInvalidArgument, c.fragment)
	}
}

func TestModelSharedByGoroutines(t *testing.T) {
	m := load(t)
	run := func() (string, error) {
		s, err := m.NewSession()
		if err != nil {
			return "", err
		}
		defer s.Close()
		g, err := s.NewGeneration(Greedy(), MaxTokens(10))
		if err != nil {
			return "", err
		}
		defer g.Close()
		if err := g.PushText("In the morning"); err != nil {
			return "", err
		}
		var b strings.Builder
		_, err = g.Run(context.Background(), func(p Piece) error { b.WriteString(p.Text); return nil })
		return b.String(), err
	}
	var wg sync.WaitGroup
	outputs := make([]string, 3)
	errs := make([]error, 3)
	for i := range outputs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			outputs[i], errs[i] = run()
		}(i)
	}
	wg.Wait()
	for i := range outputs {
		if errs[i] != nil || outputs[i] != outputs[0] || outputs[i] == "" {
			t.Fatalf("goroutine %d: %q %v (first %q)", i, outputs[i], errs[i], outputs[0])
		}
	}
}

// Values dropped without Close are freed by their finalizers.
func TestFinalizersFreeDroppedHandles(t *testing.T) {
	before := LiveHandles()
	func() {
		m, err := LoadModel(modelDir())
		if err != nil {
			t.Fatal(err)
		}
		s := must(m.NewSession())
		g := must(s.NewGeneration(Greedy(), MaxTokens(2)))
		must(LoadTokenizer(filepath.Join(modelDir(), "tokenizer.json")))
		if err := g.PushText("Hello"); err != nil {
			t.Fatal(err)
		}
		collect(t, g)
		e := must(m.NewEngine(WithMaxBatch(4)))
		st := must(e.SubmitWithPrefix(s, Greedy(), MaxTokens(2)))
		if err := st.PushText("Hi"); err != nil {
			t.Fatal(err)
		}
		if _, err := readTurn(st); err != nil {
			t.Fatal(err)
		}
		must(e.Submit())
	}()
	if LiveHandles() <= before {
		t.Fatal("the handles were freed before the collection")
	}
	for i := 0; i < 200 && LiveHandles() != before; i++ {
		runtime.GC()
		time.Sleep(5 * time.Millisecond)
	}
	if live := LiveHandles(); live != before {
		t.Fatalf("%d handles left after collections (before: %d)", live, before)
	}
}

// loadCPU loads the bundled model on the CPU backend: there batching changes no result (GPU
// backends round batched products differently, so an engine stream there matches a generation
// only up to rounding).
func loadCPU(t *testing.T) *Model {
	t.Helper()
	return load(t, WithBackend(BackendCPU))
}

func newEngine(t *testing.T, m *Model, options ...EngineOption) *Engine {
	t.Helper()
	e, err := m.NewEngine(options...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// submit registers the stream's Close, which runs before the engine's (last-in first-out).
func submit(t *testing.T, e *Engine, options ...GenOption) *Stream {
	t.Helper()
	s, err := e.Submit(options...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// readTurn pulls events without a time limit until the turn finishes.
func readTurn(s *Stream) ([]StreamEvent, error) {
	var events []StreamEvent
	for {
		ev, err := s.Next(-1)
		if err != nil {
			return events, err
		}
		events = append(events, ev)
		if ev.Finish != FinishNone {
			return events, nil
		}
	}
}

func eventsText(events []StreamEvent) string {
	var b strings.Builder
	for _, ev := range events {
		b.WriteString(ev.Text)
	}
	return b.String()
}

func eventTokens(events []StreamEvent) []int32 {
	var tokens []int32
	for _, ev := range events {
		if ev.Token >= 0 {
			tokens = append(tokens, ev.Token)
		}
	}
	return tokens
}

func pieceTokens(pieces []Piece) []int32 {
	var tokens []int32
	for _, p := range pieces {
		if p.Token >= 0 {
			tokens = append(tokens, p.Token)
		}
	}
	return tokens
}

func equalTokens(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// generationText is the reference for streams: one turn of prompt through a Generation.
func generationText(t *testing.T, m *Model, prompt string, options ...GenOption) string {
	t.Helper()
	g := newGeneration(t, newSession(t, m), options...)
	if err := g.PushText(prompt); err != nil {
		t.Fatal(err)
	}
	return text(collect(t, g))
}

func eventually(pred func() bool) bool {
	for end := time.Now().Add(20 * time.Second); !pred(); {
		if time.Now().After(end) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

func TestEngineStreamEqualsGeneration(t *testing.T) {
	m := loadCPU(t)
	const prompt = "The president said that"
	g := newGeneration(t, newSession(t, m), Greedy(), MaxTokens(12))
	if err := g.PushText(prompt); err != nil {
		t.Fatal(err)
	}
	first := collect(t, g)
	if err := g.PushText(" And then"); err != nil {
		t.Fatal(err)
	}
	second := collect(t, g)

	e := newEngine(t, m)
	s := submit(t, e, Greedy(), MaxTokens(12))
	if err := s.PushText(prompt); err != nil {
		t.Fatal(err)
	}
	events, err := readTurn(s)
	if err != nil {
		t.Fatal(err)
	}
	if got := events[len(events)-1].Finish; got != FinishMaxTokens {
		t.Fatalf("finish %v", got)
	}
	if eventsText(events) != text(first) || !equalTokens(eventTokens(events), pieceTokens(first)) {
		t.Fatalf("stream %q %v, generation %q %v", eventsText(events), eventTokens(events), text(first), pieceTokens(first))
	}
	if n := must(s.Stat(StatGeneratedTokens)); n != 12 {
		t.Fatalf("generated %g", n)
	}
	if n := must(s.Stat(StatPromptTokens)); n <= 0 {
		t.Fatalf("prompt tokens %g", n)
	}
	// Until new input arrives, the finish is reported again at once.
	if ev, err := s.Next(0); err != nil || ev != (StreamEvent{Token: -1, Finish: FinishMaxTokens}) {
		t.Fatalf("after the turn: %+v %v", ev, err)
	}
	// A dialogue turn continues from the stream's state.
	if err := s.PushText(" And then"); err != nil {
		t.Fatal(err)
	}
	events, err = readTurn(s)
	if err != nil {
		t.Fatal(err)
	}
	if eventsText(events) != text(second) || !equalTokens(eventTokens(events), pieceTokens(second)) {
		t.Fatalf("second turn: stream %q, generation %q", eventsText(events), text(second))
	}
	if steps := must(e.Stat(EngineSteps)); steps <= 0 {
		t.Fatalf("%d steps", steps)
	}
	if n := must(e.Stat(EngineGeneratedTokens)); n < 24 {
		t.Fatalf("%d tokens generated", n)
	}
	if n := must(e.Stat(EngineLiveStreams)); n != 1 {
		t.Fatalf("%d live streams", n)
	}
}

func TestEngineRunsEightStreamsConcurrently(t *testing.T) {
	m := loadCPU(t)
	options := []GenOption{Greedy(), MaxTokens(16), IgnoreEOS()}
	prompts := make([]string, 8)
	want := make([]string, 8)
	for i := range prompts {
		prompts[i] = fmt.Sprintf("Story number %d: once upon a time", i)
		want[i] = generationText(t, m, prompts[i], options...)
	}
	e := newEngine(t, m, WithMaxBatch(8), WithQueueCapacity(4))
	streams := make([]*Stream, 8)
	for i := range streams {
		streams[i] = submit(t, e, options...)
		if err := streams[i].PushText(prompts[i]); err != nil {
			t.Fatal(err)
		}
	}
	if n := must(e.Stat(EngineLiveStreams)); n != 8 {
		t.Fatalf("%d live streams", n)
	}
	got := make([][]StreamEvent, 8)
	errs := make([]error, 8)
	var wg sync.WaitGroup
	for i := range streams {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			got[i], errs[i] = readTurn(streams[i])
		}(i)
	}
	wg.Wait()
	for i := range streams {
		if errs[i] != nil {
			t.Fatalf("stream %d: %v", i, errs[i])
		}
		if finish := got[i][len(got[i])-1].Finish; finish != FinishMaxTokens || eventsText(got[i]) != want[i] {
			t.Fatalf("stream %d: %q (%v), want %q", i, eventsText(got[i]), finish, want[i])
		}
	}
	if n := must(e.Stat(EngineGeneratedTokens)); n < 8*16 {
		t.Fatalf("%d tokens generated", n)
	}
	for _, s := range streams {
		s.Close()
	}
	if n := must(e.Stat(EngineLiveStreams)); n != 0 {
		t.Fatalf("%d live streams after Close", n)
	}
}

func TestEngineLimitsAndErrors(t *testing.T) {
	m := loadCPU(t)
	vocab := int32(must(m.VocabSize()))
	_, err := m.NewEngine(WithMaxBatch(0))
	expectError(t, err, StatusInvalidArgument, "max_batch")
	_, err = m.NewEngine(WithQueueCapacity(1 << 40))
	expectError(t, err, StatusInvalidArgument, "queue_capacity")

	e := newEngine(t, m, WithMaxStreams(2))
	a := submit(t, e, Greedy(), MaxTokens(4))
	b := submit(t, e)
	_, err = e.Submit()
	expectError(t, err, StatusLimitExceeded, "max_streams")
	if StatusLimitExceeded.String() != "M3_ERR_LIMIT_EXCEEDED" || StatusTimeout.String() != "M3_ERR_TIMEOUT" {
		t.Fatal("status names differ from the library's")
	}
	b.Close()
	c := submit(t, e) // the slot was released
	if n := must(e.Stat(EngineLiveStreams)); n != 2 {
		t.Fatalf("%d live streams", n)
	}
	_, err = e.Submit(TopP(0))
	expectError(t, err, StatusInvalidArgument, "top_p")

	_, err = a.Next(0)
	expectError(t, err, StatusInvalidArgument, "push a prompt")
	expectError(t, a.PushText(""), StatusInvalidArgument, "empty")
	expectError(t, a.PushTokens([]int32{1, vocab}), StatusInvalidArgument, "out of range")
	if err := a.PushTokens([]int32{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if events, err := readTurn(a); err != nil || len(eventTokens(events)) != 4 {
		t.Fatalf("%d tokens, %v", len(eventTokens(events)), err)
	}
	c.Close()

	// A prefix session of another model.
	foreign := newSession(t, load(t))
	_, err = e.SubmitWithPrefix(foreign)
	expectError(t, err, StatusModelMismatch, "another model")

	// Closed and nil values.
	if err := b.PushText("x"); !errors.Is(err, ErrClosed) {
		t.Fatalf("push on a closed stream: %v", err)
	}
	if _, err := b.Next(0); !errors.Is(err, ErrClosed) {
		t.Fatalf("next on a closed stream: %v", err)
	}
	b.Cancel() // a no-op
	var nilEngine *Engine
	var nilStream *Stream
	if _, err := nilEngine.Submit(); !errors.Is(err, ErrClosed) {
		t.Fatalf("nil engine: %v", err)
	}
	if _, err := nilStream.Next(0); !errors.Is(err, ErrClosed) {
		t.Fatalf("nil stream: %v", err)
	}
	if _, err := e.SubmitWithPrefix(nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("nil prefix: %v", err)
	}
	// A stream outlives its engine; its running turn is cancelled and pushes fail.
	long := submit(t, e, Greedy(), MaxTokens(100000), IgnoreEOS())
	if err := long.PushText("The"); err != nil {
		t.Fatal(err)
	}
	if ev, err := long.Next(-1); err != nil || ev.Token < 0 {
		t.Fatalf("first event %+v %v", ev, err)
	}
	e.Close()
	if _, err := e.Submit(); !errors.Is(err, ErrClosed) {
		t.Fatalf("submit on a closed engine: %v", err)
	}
	if _, err := e.Stat(EngineSteps); !errors.Is(err, ErrClosed) {
		t.Fatalf("stat on a closed engine: %v", err)
	}
	events, err := readTurn(long)
	if err != nil || events[len(events)-1].Finish != FinishCancelled {
		t.Fatalf("after the engine closed: %v %v", events, err)
	}
	expectError(t, long.PushText(" more"), StatusInvalidArgument, "engine")
}

// One batch place, taken by a long prompt fed one token per step: a later stream waits, so its
// reader times out, deterministically, until the first stream is cancelled.
func TestEngineNextTimesOutWhileTheBatchIsFull(t *testing.T) {
	m := loadCPU(t)
	vocab := int32(must(m.VocabSize()))
	const prompt = "The president said that"
	want := generationText(t, m, prompt, Greedy(), MaxTokens(3))
	e := newEngine(t, m, WithMaxBatch(1), WithPrefillChunk(1), WithPrefillBudget(1))
	busy := submit(t, e, Greedy(), MaxTokens(3))
	waiting := submit(t, e, Greedy(), MaxTokens(3))
	long := make([]int32, 8000)
	for i := range long {
		long[i] = int32(i*7919) % vocab
	}
	if err := busy.PushTokens(long); err != nil {
		t.Fatal(err)
	}
	if err := waiting.PushText(prompt); err != nil {
		t.Fatal(err)
	}
	if !eventually(func() bool { n, err := e.Stat(EngineWaitingStreams); return err == nil && n == 1 }) {
		t.Fatal("no stream waited")
	}
	start := time.Now()
	_, err := waiting.Next(50 * time.Millisecond)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("want a timeout, got %v", err)
	}
	expectError(t, err, StatusTimeout, "")
	if elapsed := time.Since(start); elapsed < 45*time.Millisecond {
		t.Fatalf("returned after %v", elapsed)
	}
	if _, err := waiting.Next(0); !errors.Is(err, ErrTimeout) {
		t.Fatalf("poll: %v", err)
	}

	busy.Cancel()
	events, err := readTurn(waiting)
	if err != nil || eventsText(events) != want {
		t.Fatalf("the waiting stream: %q %v, want %q", eventsText(events), err, want)
	}
	if ev, err := busy.Next(-1); err != nil || ev.Finish != FinishCancelled || ev.Token != -1 {
		t.Fatalf("the busy stream: %+v %v", ev, err)
	}
}

func TestEnginePrefixAndCancel(t *testing.T) {
	m := loadCPU(t)
	tok := must(m.Tokenizer())
	prefix := newSession(t, m)
	if err := prefix.Feed(must(tok.Encode("The president said that", true))); err != nil {
		t.Fatal(err)
	}
	nPrefix := must(prefix.NTokens())
	alone := must(prefix.Fork())
	t.Cleanup(func() { alone.Close() }) // after the generation's Close
	g := newGeneration(t, alone, Greedy(), MaxTokens(10))
	if err := g.PushText(" the"); err != nil {
		t.Fatal(err)
	}
	want := text(collect(t, g))

	e := newEngine(t, m)
	s, err := e.SubmitWithPrefix(prefix, Greedy(), MaxTokens(10))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.PushText(" the"); err != nil {
		t.Fatal(err)
	}
	events, err := readTurn(s)
	if err != nil || eventsText(events) != want {
		t.Fatalf("with the prefix: %q %v, want %q", eventsText(events), err, want)
	}
	if n := must(prefix.NTokens()); n != nPrefix {
		t.Fatalf("the prefix session changed: %d tokens, was %d", n, nPrefix)
	}

	// Cancel from another goroutine, then a new turn on the same stream.
	long := submit(t, e, Greedy(), MaxTokens(100000), IgnoreEOS())
	if err := long.PushText("The"); err != nil {
		t.Fatal(err)
	}
	go func() {
		eventually(func() bool { n, err := long.Stat(StatGeneratedTokens); return err == nil && n >= 3 })
		long.Cancel()
	}()
	events, err = readTurn(long)
	if err != nil || events[len(events)-1].Finish != FinishCancelled || len(events) >= 100000 {
		t.Fatalf("cancelled turn: %d events, %v", len(events), err)
	}
	if err := long.PushText(" and"); err != nil {
		t.Fatal(err)
	}
	if ev, err := long.Next(-1); err != nil || ev.Token < 0 {
		t.Fatalf("next turn: %+v %v", ev, err)
	}
	// Close ends a Next waiting in another goroutine (the turn runs until cancelled).
	done := make(chan error)
	go func() {
		_, err := readTurn(long)
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	long.Close()
	if err := <-done; err != nil && !errors.Is(err, ErrClosed) {
		t.Fatalf("reader after Close: %v", err)
	}
}
