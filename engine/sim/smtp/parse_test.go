package smtp

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseMessage checks that no received message, however malformed,
// makes the sink panic or lose the raw bytes.
func FuzzParseMessage(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.eml"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		m := parseMessage(raw)
		if !bytes.Equal(m.Raw, raw) {
			t.Fatal("raw bytes not kept")
		}
	})
}
