package engine

import (
	"maps"
	"slices"
	"strings"
	"testing"
)

func TestDiffNamesChangedEntriesInKeyOrder(t *testing.T) {
	rec := func(mailbox, id, model string) DeviceRecord {
		return DeviceRecord{EASDevice: EASDevice{Mailbox: mailbox, DeviceID: id, DeviceModel: model}}
	}
	cur := NewState()
	for _, r := range []DeviceRecord{rec("b@x", "1", "old"), rec("a@x", "2", "same"), rec("c@x", "3", "gone")} {
		cur.Records[r.Key()] = r
	}
	next := NewState()
	next.Owned, next.Links, next.Overrides = cur.Owned, cur.Links, cur.Overrides
	for _, r := range []DeviceRecord{rec("b@x", "1", "new"), rec("a@x", "2", "same"), rec("d@x", "4", "added"), rec("0@x", "5", "added")} {
		next.Records[r.Key()] = r
	}

	c := diff(cur, next, nil)

	wantKeys := []DeviceKey{"0@x/5", "b@x/1", "d@x/4"}
	if !slices.Equal(c.PutRecords.Keys, wantKeys) {
		t.Errorf("put keys %v, want %v (the new and changed ones, in key order)", c.PutRecords.Keys, wantKeys)
	}
	if len(c.PutRecords.Items) != 0 {
		t.Errorf("%d records copied into the commit, want them named by key", len(c.PutRecords.Items))
	}
	got := c.PutRecords.Values()
	for i, k := range wantKeys {
		if got[i] != next.Records[k] {
			t.Errorf("put %d is %+v, want next's record %s", i, got[i], k)
		}
	}
	if !slices.Equal(c.DeleteRecords, []DeviceKey{"c@x/3"}) {
		t.Errorf("deletes %v, want [c@x/3]", c.DeleteRecords)
	}
	if c.PutOwned.Len() != 0 || c.DeleteOwned != nil || c.PutLinks.Len() != 0 {
		t.Error("maps the two states share produced puts or deletes")
	}
	if c.Empty() {
		t.Error("a commit with puts reports itself empty")
	}
	if !diff(next, next, nil).Empty() {
		t.Error("diff of a state with itself is not empty")
	}
}

func TestPutsYieldItemsThenKeys(t *testing.T) {
	from := map[string]int{"a": 1, "b": 2, "c": 3}
	p := Puts[string, int]{Items: []int{9}, Keys: []string{"c", "a"}, From: maps.Clone(from)}
	if p.Len() != 3 {
		t.Errorf("Len %d, want 3", p.Len())
	}
	if got := p.Values(); !slices.Equal(got, []int{9, 3, 1}) {
		t.Errorf("Values %v, want [9 3 1]", got)
	}
	var first []int
	for v := range p.All {
		first = append(first, *v)
		break
	}
	if !slices.Equal(first, []int{9}) {
		t.Errorf("stopping after one yielded %v", first)
	}
}

func TestPutsReadKeysThroughRefs(t *testing.T) {
	vals := []int{1, 2, 3}
	refs := map[string]*int{"a": &vals[0], "b": &vals[1], "c": &vals[2]}
	p := Puts[string, int]{Items: []int{9}, Keys: []string{"c", "gone", "a"}, Refs: refs}
	// A key the map lacks yields the zero value, as it does through From.
	if got := p.Values(); !slices.Equal(got, []int{9, 3, 0, 1}) {
		t.Errorf("Values %v, want [9 3 0 1]", got)
	}
	vals[2] = 30 // the refs are read when the puts are, not when made
	if got := p.Values(); !slices.Equal(got, []int{9, 30, 0, 1}) {
		t.Errorf("Values after a change %v, want [9 30 0 1]", got)
	}
}

// FuzzKeyOf checks the one-allocation key against its definition.
func FuzzKeyOf(f *testing.F) {
	f.Add("Anna.Berg@Contoso.com", "ApplF17XK2L9Q4MN")
	f.Add("ÅSA@contoso.com", "Dev")
	f.Add("", "")
	f.Add("a/b", "İ")
	f.Fuzz(func(t *testing.T, mailbox, deviceID string) {
		want := DeviceKey(strings.ToLower(mailbox) + "/" + strings.ToLower(deviceID))
		if got := KeyOf(mailbox, deviceID); got != want {
			t.Errorf("KeyOf(%q, %q) = %q, want %q", mailbox, deviceID, got, want)
		}
	})
}

func TestDiffAllocatesPerChangeNotPerEntry(t *testing.T) {
	cur, next := NewState(), NewState()
	next.Owned, next.Links, next.Overrides = cur.Owned, cur.Links, cur.Overrides
	for i := range 1000 {
		r := DeviceRecord{EASDevice: EASDevice{Mailbox: "user@contoso.com", DeviceID: strings.Repeat("x", i%7) + string(rune('a'+i%26)) + strings.Repeat("y", i/26)}}
		cur.Records[r.Key()] = r
		r.DeviceModel = "changed"
		next.Records[r.Key()] = r
	}
	// The sorted key list grows by doubling; a copy of a record per
	// comparison would be 2,000 allocations.
	allocs := testing.AllocsPerRun(5, func() {
		c := diff(cur, next, nil)
		var n int
		for range c.PutRecords.All {
			n++
		}
		if n != 1000 {
			t.Fatalf("%d puts, want 1000", n)
		}
	})
	if allocs > 40 {
		t.Errorf("diff and walking its puts took %.0f allocations for 1,000 changed records, want at most 40", allocs)
	}
}
