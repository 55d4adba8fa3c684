package mamba3rt

import (
	"context"
	"errors"
	"io"
)

// Stream produces the current turn's pieces on a channel, from a goroutine that calls Next
// until the turn finishes, ctx is done or an error occurs. Range over the channel, then call
// wait: it returns nil when the turn finished normally (Finish says why), ctx.Err() when ctx
// ended it, or the error that stopped it.
//
//	pieces, wait := gen.Stream(ctx)
//	for p := range pieces {
//		fmt.Print(p.Text)
//	}
//	if err := wait(); err != nil { ... }
//
// Either drain the channel or cancel ctx; a consumer that stops reading without cancelling
// leaves the goroutine blocked.
func (g *Generation) Stream(ctx context.Context) (pieces <-chan Piece, wait func() error) {
	ch := make(chan Piece)
	done := make(chan struct{})
	var result error
	go func() {
		defer close(done)
		defer close(ch)
		for {
			piece, err := g.Next(ctx)
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				result = err
				return
			}
			select {
			case ch <- piece:
			case <-ctx.Done():
				_, _ = g.Next(ctx) // ends the turn as cancelled
				result = ctx.Err()
				return
			}
		}
	}()
	return ch, func() error {
		<-done
		return result
	}
}
