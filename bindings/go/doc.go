// Package mamba3rt is the Go binding of mamba3rt, a runtime for Mamba-3 language models
// with a constant-size state per stream, through cgo and the C header include/mamba3rt.h.
//
// A Model holds weights that any number of goroutines may share. A Session is one
// recurrent state (feed, step, snapshot/restore/fork). A Generation streams text from a
// session: push text or tokens in, then read pieces with Next, range over the channel of
// Stream, or pass a callback to Run; all three stop when their context.Context is done.
//
//	model, err := mamba3rt.LoadModel("models/default")
//	if err != nil { ... }
//	defer model.Close()
//	session, err := model.NewSession()
//	defer session.Close()
//	gen, err := session.NewGeneration(mamba3rt.Greedy(), mamba3rt.MaxTokens(20))
//	defer gen.Close()
//	gen.PushText("The president said that")
//	pieces, wait := gen.Stream(ctx)
//	for p := range pieces {
//		fmt.Print(p.Text)
//	}
//	if err := wait(); err != nil { ... }
//
// An Engine (Model.NewEngine) runs many concurrent Streams on one model, decoded in batches by
// one scheduler thread: Submit a stream, push its input, and read its events with Next, which
// waits up to a timeout (errors.Is(err, ErrTimeout) when nothing came in time).
//
// Every type has a Close method that frees its C handle; a finalizer frees it too if Close
// was never called, but only when the garbage collector gets to it, so call Close. Methods
// on a closed value return an error that matches ErrClosed. Failed calls return *Error,
// which carries the C status and the library's message.
package mamba3rt
