package store

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"easgate/engine"
)

// mdmDevices returns MDM records with the given IDs, Compliant.
func mdmDevices(ids ...string) []engine.MDMDevice {
	out := make([]engine.MDMDevice, len(ids))
	for i, id := range ids {
		out[i] = engine.MDMDevice{ID: id, UserPrincipalName: "user-" + id + "@contoso.com", OperatingSystem: "iOS",
			Compliance: engine.ComplianceCompliant, Enrolled: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	}
	return out
}

// replacing is the commit a full sync makes of what it read from Intune.
func replacing(expect uint64, devs []engine.MDMDevice) *engine.Commit {
	from := make(map[string]engine.MDMDevice, len(devs))
	for _, d := range devs {
		from[d.ID] = d
	}
	return &engine.Commit{Expect: expect, ReplaceMDM: true,
		PutMDM: engine.Puts[string, engine.MDMDevice]{Keys: slices.Sorted(maps.Keys(from)), From: from}}
}

func TestReplaceMDMLeavesExactlyTheInventory(t *testing.T) {
	s := openTemp(t, Options{})
	mustCommit(t, s, &engine.Commit{PutMDM: engine.Puts[string, engine.MDMDevice]{Items: mdmDevices("a", "b", "c", "d", "e")}})

	next := mdmDevices("b", "c", "f")
	next[1].Compliance = engine.ComplianceNoncompliant
	if serial := mustCommit(t, s, replacing(1, next)); serial != 2 {
		t.Fatalf("serial %d, want 2", serial)
	}
	equalMDM(t, s, next)
	if st := mustLoad(t, s); st.MDMStored != 3 {
		t.Errorf("Load counts %d MDM records, want 3", st.MDMStored)
	}

	// An inventory that reads nothing empties the saved one.
	mustCommit(t, s, replacing(2, nil))
	equalMDM(t, s, nil)
}

// TestReplaceWritesOnlyWhatDiffers checks the writes a replacement makes
// against what the bucket holds: an unchanged record is neither put nor
// deleted, so its page is not rewritten.
func TestReplaceWritesOnlyWhatDiffers(t *testing.T) {
	s := openTemp(t, Options{})
	mustCommit(t, s, &engine.Commit{PutMDM: engine.Puts[string, engine.MDMDevice]{Items: mdmDevices("a", "b", "c", "d")}})
	next := mdmDevices("a", "b", "bb", "d", "z")
	next[1].Model = "iPhone16,1" // changed
	c := replacing(1, next)
	err := s.view(func(tx *bolt.Tx) error {
		puts, dels, err := replaceAll(tx.Bucket(bucketMDM), bucketMDM, &c.PutMDM, mdmKey, appendMDM)
		if err != nil {
			return err
		}
		var put []string
		for _, p := range puts {
			put = append(put, string(p.k))
		}
		var del []string
		for _, k := range dels {
			del = append(del, string(k))
		}
		if !slices.Equal(put, []string{"b", "bb", "z"}) || !slices.Equal(del, []string{"c"}) {
			t.Errorf("replacement puts %q and deletes %q; want [b bb z] and [c]", put, del)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestReplaceMDMOutOfOrderWritesNothing(t *testing.T) {
	s := openTemp(t, Options{})
	mustCommit(t, s, &engine.Commit{PutMDM: engine.Puts[string, engine.MDMDevice]{Items: mdmDevices("a", "b")}})
	c := replacing(1, mdmDevices("c", "d"))
	slices.Reverse(c.PutMDM.Keys)
	_, err := s.Commit(ctx, c)
	if err == nil || errors.Is(err, engine.ErrStaleSerial) {
		t.Fatalf("a replacement out of key order committed: %v", err)
	}
	equalMDM(t, s, mdmDevices("a", "b"))
	if st := mustLoad(t, s); st.Serial != 1 {
		t.Errorf("serial %d after a refused commit, want 1", st.Serial)
	}
}

// TestReplaceMDMStagedKeepsEveryRecord replaces into an empty bucket with
// enough records to be staged: the staged records are the replacement,
// not something for it to delete.
func TestReplaceMDMStagedKeepsEveryRecord(t *testing.T) {
	s := openTemp(t, Options{})
	s.stage = stageSize{min: 10, batch: 4}
	ids := make([]string, 25)
	for i := range ids {
		ids[i] = string(rune('a'+i)) + "-mdm"
	}
	devs := mdmDevices(ids...)
	before := s.commits.Load()
	mustCommit(t, s, replacing(0, devs))
	if got := s.commits.Load() - before; got < 3 {
		t.Errorf("the replacement took %d write transactions: it was not staged", got)
	}
	equalMDM(t, s, devs)

	// Replaced again, now the bucket holds them: unstaged, one record gone.
	mustCommit(t, s, replacing(1, devs[1:]))
	equalMDM(t, s, devs[1:])
}

func TestMDMDeviceOfAnUnknownID(t *testing.T) {
	s := openTemp(t, Options{})
	for _, id := range []string{"", "nope"} {
		if m, ok, err := s.MDMDevice(ctx, id); ok || err != nil || m != (engine.MDMDevice{}) {
			t.Errorf("MDMDevice(%q) = %+v, %v, %v; want nothing", id, m, ok, err)
		}
	}
	if all, err := s.MDMDevices(ctx); err != nil || len(all) != 0 {
		t.Errorf("MDMDevices of an empty store = %v, %v", all, err)
	}
}

// TestDamagedMDMRecordIsReportedWhereItIsRead damages one saved MDM
// record: Load, which only counts them, still loads; reading the records
// fails with ErrCorrupt naming the record.
func TestDamagedMDMRecordIsReportedWhereItIsRead(t *testing.T) {
	s := openTemp(t, Options{})
	mustCommit(t, s, &engine.Commit{PutMDM: engine.Puts[string, engine.MDMDevice]{Items: mdmDevices("a", "b")}})
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMDM).Put([]byte("b"), []byte{0xff, 1, 2}) }); err != nil {
		t.Fatal(err)
	}
	if st := mustLoad(t, s); st.MDMStored != 2 {
		t.Errorf("Load counts %d MDM records, want 2", st.MDMStored)
	}
	if _, err := s.MDMDevices(ctx); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), `mdm "b"`) {
		t.Errorf("MDMDevices of a damaged record: %v, want ErrCorrupt naming it", err)
	}
	if _, _, err := s.MDMDevice(ctx, "b"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("MDMDevice of a damaged record: %v, want ErrCorrupt", err)
	}
	if m, ok, err := s.MDMDevice(ctx, "a"); !ok || err != nil || m.ID != "a" {
		t.Errorf("MDMDevice of an intact record: %+v, %v, %v", m, ok, err)
	}
}
