package store

import (
	"testing"
)

// TestLoadAcrossChunks loads buckets of more pairs than one chunk of
// collect holds, and of exactly a chunk, and finds every entry.
func TestLoadAcrossChunks(t *testing.T) {
	for _, n := range []int{pairChunk, 2*pairChunk + 17} {
		c := newGen(11).snapshot(n, n, 10)
		s, err := Open(t.TempDir()+"/easgate.db", Options{Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Commit(ctx, c); err != nil {
			t.Fatal(err)
		}
		st, err := s.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Records) != n || st.MDMStored != n {
			t.Errorf("%d pairs a bucket: loaded %d records and %d MDM devices", n, len(st.Records), st.MDMStored)
		}
		for _, r := range c.PutRecords.Items {
			if got, ok := st.Records[r.Key()]; !ok || got != r {
				t.Fatalf("%d pairs a bucket: record %s loaded as %+v (found %t)", n, r.Key(), got, ok)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
