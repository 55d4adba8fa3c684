package mamba3rt

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// modelDir is $MAMBA3RT_MODEL, else the repository's bundled model.
func modelDir() string {
	if dir := os.Getenv("MAMBA3RT_MODEL"); dir != "" {
		return dir
	}
	return filepath.Join("..", "..", "models", "default")
}

// TestMain runs the tests, then checks on the C side that every handle was freed: by Close
// in the tests, or by the finalizers of values some tests deliberately drop.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		live := LiveHandles()
		for i := 0; i < 100 && live != 0; i++ {
			runtime.GC() // finalizers run after a collection, on their own goroutine
			time.Sleep(10 * time.Millisecond)
			live = LiveHandles()
		}
		if live != 0 {
			fmt.Printf("FAIL leak check: m3_live_handles() == %d after all tests and finalizers\n", live)
			code = 1
		} else {
			fmt.Println("ok   leak check: m3_live_handles() == 0")
		}
	}
	os.Exit(code)
}
