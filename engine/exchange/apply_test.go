package exchange

import (
	"slices"
	"testing"

	"easgate/engine"
)

func TestGroupChanges(t *testing.T) {
	ch := func(mailbox, id string, l engine.List, op engine.Op) engine.Change {
		return engine.Change{Mailbox: mailbox, DeviceID: id, List: l, Op: op}
	}
	changes := []engine.Change{
		ch("anna@contoso.com", "A1", engine.ListBlocked, engine.OpAdd),     // e1
		ch("ben@contoso.com", "B1", engine.ListAllowed, engine.OpAdd),      // e2
		ch("ANNA@contoso.com", "A2", engine.ListAllowed, engine.OpRemove),  // e1, same mailbox in another case
		ch("anna@contoso.com", "a1", engine.ListBlocked, engine.OpAdd),     // e1, duplicate of A1
		ch("anna@contoso.com", "A1", engine.ListBlocked, engine.OpRemove),  // e3: undoes A1, so after it
		ch("anna@contoso.com", "", engine.ListBlocked, engine.OpAdd),       // refused: no ID
		ch(" ", "X", engine.ListBlocked, engine.OpAdd),                     // refused: no mailbox
		ch("ben@contoso.com", "B2", engine.List("pending"), engine.OpAdd),  // refused: unknown list
		ch("ben@contoso.com", "B3", engine.ListBlocked, engine.Op("swap")), // refused: unknown op
	}
	edits, results := groupChanges(changes)
	type flat struct {
		id, mailbox    string
		aa, ar, ba, br []string
		changes        []int
	}
	var got []flat
	for _, e := range edits {
		got = append(got, flat{e.ID, e.Mailbox, e.AllowAdd, e.AllowRemove, e.BlockAdd, e.BlockRemove, e.changes})
	}
	want := []flat{
		{"e1", "anna@contoso.com", nil, []string{"A2"}, []string{"A1"}, nil, []int{0, 2, 3}},
		{"e2", "ben@contoso.com", []string{"B1"}, nil, nil, nil, []int{1}},
		{"e3", "anna@contoso.com", nil, nil, nil, []string{"A1"}, []int{4}},
	}
	if len(got) != len(want) {
		t.Fatalf("edits %+v", got)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.id != w.id || g.mailbox != w.mailbox || !slices.Equal(g.aa, w.aa) || !slices.Equal(g.ar, w.ar) ||
			!slices.Equal(g.ba, w.ba) || !slices.Equal(g.br, w.br) || !slices.Equal(g.changes, w.changes) {
			t.Errorf("edit %d: got %+v, want %+v", i, g, w)
		}
	}
	for i, r := range results {
		refused := i >= 5
		if (r.Error != "") != refused || r.Change != changes[i] {
			t.Errorf("result %d: %+v", i, r)
		}
	}
}
