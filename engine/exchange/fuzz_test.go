package exchange

import (
	"bytes"
	"log/slog"
	"os"
	"testing"
	"unicode/utf8"

	"easgate/engine"
)

// FuzzParseLine feeds arbitrary stdout lines to the inventory builder: it
// must never panic, and a line it cannot read must become a problem.
func FuzzParseLine(f *testing.F) {
	data, err := os.ReadFile("testdata/inventory-ps51.txt")
	if err != nil {
		f.Fatal(err)
	}
	for _, line := range bytes.Split(data, []byte("\n")) {
		f.Add(line)
	}
	f.Add([]byte(`{"t":"device","FirstSyncTime":"\/Date(-62135596800000)\/","DeviceAccessState":-1}`))
	f.Add([]byte(`[{"t":"end","devices":1e309}]`))
	f.Fuzz(func(t *testing.T, line []byte) {
		b := newInventoryBuilder("ex01", engine.InventoryQuery{}, slog.New(slog.DiscardHandler))
		b.line(1, line)
		before := len(b.inv.Problems)
		var p lineParser
		err := p.parse(line, func(r *record) {
			_ = enumName(r.DeviceAccessState, accessStates)
			_ = reasonName(r.DeviceAccessStateReason)
		})
		if err != nil && before == 0 {
			t.Errorf("line %q failed to parse (%v) without a problem", line, err)
		}
		inv := b.finish(&stderrRecords{})
		if inv.Complete() {
			t.Errorf("one line cannot make a complete inventory: %q", line)
		}
	})
}

// FuzzParseStderr feeds arbitrary stderr to the CLIXML reader: it must
// never panic and always return valid text.
func FuzzParseStderr(f *testing.F) {
	for _, name := range []string{"stderr-progress.txt", "stderr-not-recognized.txt", "stderr-cut-off.txt", "stderr-objects.txt", "stderr-cmd.txt"} {
		data, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("#< CLIXML\r\n<Objs><S S=\"Error\">_xD800__x0000_<</S>"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s := parseStderr(data)
		for _, e := range s.Errors {
			if !utf8.ValidString(e) && utf8.Valid(data) {
				t.Errorf("error text %q is not valid UTF-8", e)
			}
		}
		_ = s.message()
	})
}
