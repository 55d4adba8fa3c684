// Command stream prints the greedy continuation of a prompt from the bundled model as it is
// generated: exactly what `mamba3rt generate --greedy --prompt PROMPT -n N` prints on stdout.
//
//	go run ./cmd/stream "The president said that" 20
//
// The model is $MAMBA3RT_MODEL, else the first models/default found in the current
// directory or one of its parents (the repository's bundled model). Ctrl-C stops it.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"

	"mamba3rt"
)

func modelDir() (string, error) {
	if dir := os.Getenv("MAMBA3RT_MODEL"); dir != "" {
		return dir, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		candidate := filepath.Join(dir, "models", "default")
		if _, err := os.Stat(filepath.Join(candidate, "config.json")); err == nil {
			return candidate, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no models/default here or above; set MAMBA3RT_MODEL")
		}
		dir = parent
	}
}

func stream(ctx context.Context, prompt string, n int32) error {
	dir, err := modelDir()
	if err != nil {
		return err
	}
	model, err := mamba3rt.LoadModel(dir)
	if err != nil {
		return err
	}
	defer model.Close()
	session, err := model.NewSession()
	if err != nil {
		return err
	}
	defer session.Close()
	gen, err := session.NewGeneration(mamba3rt.Greedy(), mamba3rt.MaxTokens(n))
	if err != nil {
		return err
	}
	defer gen.Close()
	if err := gen.PushText(prompt); err != nil {
		return err
	}
	pieces, wait := gen.Stream(ctx)
	for p := range pieces {
		if _, err := os.Stdout.WriteString(p.Text); err != nil {
			return err
		}
	}
	return wait()
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: stream PROMPT N   (N: tokens to generate, a non-negative integer)")
		os.Exit(2)
	}
	n, err := strconv.ParseInt(os.Args[2], 10, 32)
	if err != nil || n < 0 {
		fmt.Fprintf(os.Stderr, "stream: N must be a non-negative integer, got %q\n", os.Args[2])
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := stream(ctx, os.Args[1], int32(n)); err != nil {
		fmt.Fprintln(os.Stderr, "stream:", err)
		os.Exit(1)
	}
}
