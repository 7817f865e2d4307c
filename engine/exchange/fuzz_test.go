package exchange

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"strings"
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
		b := newInventoryBuilder(engine.InventoryQuery{}, slog.New(slog.DiscardHandler))
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

// FuzzPayloadIsData feeds arbitrary mailboxes and device IDs through the
// apply path's grouping and stdin encoding: the stdin is printable ASCII
// whatever they hold, decodes to exactly what was given (valid UTF-8), and
// the script text never changes.
func FuzzPayloadIsData(f *testing.F) {
	f.Add("anna@contoso.com", "ApplF17XK2MMN72")
	f.Add(`zoë@contoso.com`, "a\"b'c$(x)`;\n😀é")
	f.Add("'; Remove-Mailbox *; '", "\x00\x1b[31m\u2028}finally{")
	script := commandLine(applyScript)
	f.Fuzz(func(t *testing.T, mailbox, id string) {
		edits, results := groupChanges([]engine.Change{{Mailbox: mailbox, DeviceID: id, List: engine.ListBlocked, Op: engine.OpAdd}})
		stdin, err := asciiJSON(applyPayload{sessionPayload: sessionPayload{Session: SessionSnapin, Import: exchangeCmdlets}, Edits: edits})
		if err != nil {
			t.Fatal(err)
		}
		for i, c := range stdin {
			if c < 0x20 || c > 0x7e {
				t.Fatalf("stdin byte %d is %#x: not printable ASCII", i, c)
			}
		}
		if commandLine(applyScript) != script {
			t.Fatal("the script text changed")
		}
		if results[0].Error != "" {
			if len(edits) != 0 {
				t.Fatalf("a refused change was sent: %+v", edits)
			}
			return
		}
		var back struct {
			Edits []struct {
				Mailbox  string   `json:"mailbox"`
				BlockAdd []string `json:"block_add"`
			} `json:"edits"`
		}
		if err := json.Unmarshal(stdin, &back); err != nil {
			t.Fatal(err)
		}
		if !utf8.ValidString(mailbox) || !utf8.ValidString(id) {
			return // JSON carries valid Unicode only; Exchange's strings are UTF-16
		}
		if len(back.Edits) != 1 || back.Edits[0].Mailbox != strings.TrimSpace(mailbox) || len(back.Edits[0].BlockAdd) != 1 ||
			back.Edits[0].BlockAdd[0] != strings.TrimSpace(id) {
			t.Fatalf("stdin %s decodes to %+v, want mailbox %q and ID %q", stdin, back, mailbox, id)
		}
	})
}
