package engine

import (
	"reflect"
	"testing"
)

func TestMatchResults(t *testing.T) {
	a := Change{Mailbox: "anna@contoso.com", DeviceID: "ApplA", List: ListBlocked, Op: OpAdd}
	b := Change{Mailbox: "ben@contoso.com", DeviceID: "ApplB", List: ListAllowed, Op: OpAdd}
	c := Change{Mailbox: "cleo@contoso.com", DeviceID: "ApplC", List: ListBlocked, Op: OpRemove}
	changes := []Change{a, b, c}
	upper := b
	upper.Mailbox, upper.DeviceID = "Ben@Contoso.com", "APPLB"
	tests := []struct {
		name    string
		results []ChangeResult
		want    []bool // OK of each change's result; false also for none
		found   []bool
	}{
		{name: "in order", results: []ChangeResult{{Change: a, OK: true}, {Change: b}, {Change: c, OK: true}},
			want: []bool{true, false, true}, found: []bool{true, true, true}},
		{name: "out of order", results: []ChangeResult{{Change: c, OK: true}, {Change: a}, {Change: b, OK: true}},
			want: []bool{false, true, true}, found: []bool{true, true, true}},
		{name: "one missing", results: []ChangeResult{{Change: a, OK: true}, {Change: c, OK: true}},
			want: []bool{true, false, true}, found: []bool{true, false, true}},
		{name: "spelled in another case", results: []ChangeResult{{Change: a}, {Change: upper, OK: true}, {Change: c}},
			want: []bool{false, true, false}, found: []bool{true, true, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			result := matchResults(changes, tt.results)
			for i := range changes {
				r, ok := result(i)
				if ok != tt.found[i] || r.OK != tt.want[i] {
					t.Errorf("change %d: result OK %t found %t, want OK %t found %t", i, r.OK, ok, tt.want[i], tt.found[i])
				}
			}
		})
	}
}

func TestBatchesKeepAMailboxTogetherInMailboxOrder(t *testing.T) {
	changes := []Change{
		{Mailbox: "b@x", DeviceID: "1"}, {Mailbox: "A@x", DeviceID: "2"}, {Mailbox: "c@x", DeviceID: "3"},
		{Mailbox: "a@x", DeviceID: "4"}, {Mailbox: "B@x", DeviceID: "5"}, {Mailbox: "a@x", DeviceID: "6"},
	}
	var got [][]string
	for _, idx := range batches(changes, 2) {
		var ids []string
		for _, c := range batch(changes, idx) {
			ids = append(ids, c.DeviceID)
		}
		got = append(got, ids)
	}
	// a@x has three changes: its batch grows past the size rather than
	// splitting them; equal mailboxes keep the plan's order.
	want := [][]string{{"2", "4", "6"}, {"1", "5"}, {"3"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("batches %v, want %v", got, want)
	}
	if len(batches(nil, 2)) != 0 {
		t.Error("no changes made a batch")
	}
}
