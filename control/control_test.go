package control

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"easgate/engine"
)

// serve starts a server for api on a socket in a new directory, and a
// client dialled to it; both end with the test.
func serve(t *testing.T, cfg Config) (*Server, *Client) {
	t.Helper()
	if cfg.Socket == "" {
		cfg.Socket = filepath.Join(t.TempDir(), "easgate.sock")
	}
	srv, err := Listen(cfg)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("close server: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	c, err := Dial(context.Background(), srv.Path())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return srv, c
}

func me(t *testing.T) string {
	t.Helper()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	return u.Username
}

// TestEveryMethodCrossesTheSocket calls each engine.API method through the
// client and checks that the engine got the arguments (with the actor
// replaced by the caller's OS user) and the client got the results.
func TestEveryMethodCrossesTheSocket(t *testing.T) {
	f := newFake()
	_, c := serve(t, Config{API: f})
	ctx := context.Background()
	who := me(t)
	key := fakeRecord.Key()
	tests := []struct {
		name    string
		call    func() (any, error)
		want    any // the result the client should return
		method  string
		wantArg any // what the engine should receive
	}{
		{"status", func() (any, error) { s, err := c.Status(ctx); return s.HeldPlan.NewBlocks, err }, 1, "Status", nil},
		{"devices", func() (any, error) { return c.Devices(ctx, engine.DeviceQuery{Filter: engine.FilterBlocked}) },
			[]engine.DeviceRecord{fakeRecord}, "Devices", engine.DeviceQuery{Filter: engine.FilterBlocked}},
		{"device", func() (any, error) { d, err := c.Device(ctx, key); return d.Record.Decision, err }, fakeRecord.Decision, "Device", key},
		{"runs", func() (any, error) { r, err := c.Runs(ctx, 5); return r[0].Counts, err }, fakeRun.Counts, "Runs", 5},
		{"journal", func() (any, error) {
			j, err := c.Journal(ctx, engine.JournalQuery{RunID: "run-1", Limit: 3})
			return j[0].Message, err
		},
			"linked", "Journal", engine.JournalQuery{RunID: "run-1", Limit: 3}},
		{"sync", func() (any, error) {
			r, err := c.Sync(ctx, engine.SyncRequest{Kind: engine.RunQuick, DryRun: true, Actor: "mallory"})
			return r.Plan.Serial, err
		}, uint64(7), "Sync", engine.SyncRequest{Kind: engine.RunQuick, DryRun: true, Actor: who}},
		{"run detail", func() (any, error) { d, err := c.RunDetail(ctx, "run-1"); return d.Run.ID, err }, "run-1", "RunDetail", "run-1"},
		{"candidates", func() (any, error) { cs, err := c.Candidates(ctx, key); return cs[0].Why, err }, "same user", "Candidates", key},
		{"logs", func() (any, error) { l, err := c.Logs(ctx, 9); return l[0].Message, err }, "sync started", "Logs", 9},
		{"link", func() (any, error) {
			return nil, c.Link(ctx, engine.LinkRequest{Device: key, MDMID: "m1", Actor: "mallory"})
		},
			nil, "Link", engine.LinkRequest{Device: key, MDMID: "m1", Actor: who}},
		{"unlink", func() (any, error) { return nil, c.Unlink(ctx, engine.DeviceRequest{Device: key}) },
			nil, "Unlink", engine.DeviceRequest{Device: key, Actor: who}},
		{"resend", func() (any, error) {
			r, err := c.Resend(ctx, engine.ResendRequest{Devices: []engine.DeviceKey{key}})
			return r[0].OK, err
		},
			true, "Resend", engine.ResendRequest{Devices: []engine.DeviceKey{key}, Actor: who}},
		{"preview", func() (any, error) { p, err := c.Preview(ctx, key); return p.Subject, err }, "Enroll your phone", "Preview", key},
		{"override", func() (any, error) {
			return nil, c.Override(ctx, engine.OverrideRequest{Device: key, Access: engine.AccessAllow, Until: t0, Note: "CEO"})
		}, nil, "Override", engine.OverrideRequest{Device: key, Access: engine.AccessAllow, Until: t0, Note: "CEO", Actor: who}},
		{"remove partnership", func() (any, error) { return nil, c.RemovePartnership(ctx, engine.DeviceRequest{Device: key}) },
			nil, "RemovePartnership", engine.DeviceRequest{Device: key, Actor: who}},
		{"wipe", func() (any, error) { return nil, c.Wipe(ctx, engine.WipeRequest{Device: key, AccountOnly: true}) },
			nil, "Wipe", engine.WipeRequest{Device: key, AccountOnly: true, Actor: who}},
		{"statistics", func() (any, error) { s, err := c.Statistics(ctx, key); return s.Fields["DeviceOS"], err }, "iOS 18", "Statistics", key},
		{"approve", func() (any, error) {
			r, err := c.Approve(ctx, engine.PlanRequest{PlanID: "run-1"})
			return r.Run.ID, err
		},
			"run-1", "Approve", engine.PlanRequest{PlanID: "run-1", Actor: who}},
		{"discard", func() (any, error) { return nil, c.Discard(ctx, engine.PlanRequest{PlanID: "run-1", Actor: "x"}) },
			nil, "Discard", engine.PlanRequest{PlanID: "run-1", Actor: who}},
		{"cancel", func() (any, error) { return nil, c.Cancel(ctx, "mallory") }, nil, "Cancel", who},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.call()
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			if tt.want != nil && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("result = %#v, want %#v", got, tt.want)
			}
			if arg := f.arg(tt.method); !reflect.DeepEqual(arg, tt.wantArg) {
				t.Errorf("engine got %#v, want %#v", arg, tt.wantArg)
			}
		})
	}
	// The compiler checks the method set; the table must keep up with it.
	if n := reflect.TypeFor[engine.API]().NumMethod(); len(tests) != n-1 { // Subscribe has its own test
		t.Errorf("the table covers %d methods, engine.API has %d besides Subscribe", len(tests), n-1)
	}
	if in := c.Info(); in.User != who || in.PID != os.Getpid() || in.Service != "easgate" {
		t.Errorf("info = %+v, want this process and user %s", in, who)
	}
}

func TestErrorsKeepTheirIdentity(t *testing.T) {
	f := newFake()
	_, c := serve(t, Config{API: f})
	ctx := context.Background()
	tests := []struct {
		name   string
		err    error
		is     []error
		status int
	}{
		{"stale plan", fmt.Errorf("approve run-1: %w", engine.ErrStalePlan), []error{engine.ErrStalePlan}, 409},
		{"not found", fmt.Errorf("run x: %w", engine.ErrNotFound), []error{engine.ErrNotFound}, 404},
		{"read-only", engine.ErrReadOnly, []error{engine.ErrReadOnly}, 403},
		{"unavailable", fmt.Errorf("resend: no mailer configured: %w", engine.ErrUnavailable), []error{engine.ErrUnavailable}, 503},
		{"two at once", errors.Join(engine.ErrNoHeldPlan, engine.ErrClosed), []error{engine.ErrNoHeldPlan, engine.ErrClosed}, 409},
		{"plain", errors.New("sync needs Exchange and Intune connections"), nil, 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.mu.Lock()
			f.err = tt.err
			f.mu.Unlock()
			_, err := c.Approve(ctx, engine.PlanRequest{PlanID: "run-1"})
			if err == nil || err.Error() != tt.err.Error() {
				t.Fatalf("err = %v, want the message %q", err, tt.err)
			}
			for _, s := range tt.is {
				if !errors.Is(err, s) {
					t.Errorf("errors.Is(%v, %v) = false across the socket", err, s)
				}
			}
			if tt.is == nil && errors.Is(err, engine.ErrNotFound) {
				t.Error("a plain error gained an identity")
			}
			var re *RemoteError
			if !errors.As(err, &re) || re.Status != tt.status {
				t.Errorf("status = %+v, want %d", re, tt.status)
			}
		})
	}
}

func TestSubscribeStreamsEventsUntilEitherSideEnds(t *testing.T) {
	f := newFake()
	srv, c := serve(t, Config{API: f})
	waitSubs := func(n int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			f.mu.Lock()
			got := len(f.subs)
			f.mu.Unlock()
			if got == n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d subscriptions, want %d", got, n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	recv := func(ch <-chan engine.Event) (engine.Event, bool) {
		t.Helper()
		select {
		case ev, ok := <-ch:
			return ev, ok
		case <-time.After(5 * time.Second):
			t.Fatal("no event within 5s")
			return engine.Event{}, false
		}
	}

	// The caller ends it.
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := c.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitSubs(1)
	want := engine.Event{Kind: engine.EventProgress, Time: t0, Progress: &engine.Progress{Run: fakeRun, Phase: engine.PhaseApply, Done: 3, Total: 9}}
	f.emit(want)
	got, ok := recv(ch)
	if !ok || got.Kind != want.Kind || got.Progress == nil || got.Progress.Done != 3 || got.Progress.Run.ID != "run-1" || !got.Time.Equal(t0) {
		t.Errorf("event = %+v, want %+v", got, want)
	}
	cancel()
	if _, ok := recv(ch); ok {
		t.Error("channel still open after the caller's context ended")
	}
	waitSubs(0) // the server saw the caller go and ended the engine's subscription

	// The engine ends it.
	ch, err = c.Subscribe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	waitSubs(1)
	f.closeAll()
	if _, ok := recv(ch); ok {
		t.Error("channel still open after the engine closed the subscription")
	}

	// The server closes.
	ch, err = c.Subscribe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	waitSubs(1)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	if err := srv.Close(ctx2); err != nil {
		t.Fatal(err)
	}
	if _, ok := recv(ch); ok {
		t.Error("channel still open after the server closed")
	}
	if _, err := os.Stat(srv.Path()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket file after Close: %v", err)
	}
	if _, err := c.Status(context.Background()); !errors.Is(err, ErrNoService) {
		t.Errorf("a call after the server went: %v, want ErrNoService", err)
	}
}

func TestReadOnlyClientRefusesActions(t *testing.T) {
	f := newFake()
	_, c := serve(t, Config{API: f})
	ro := c.ReadOnly()
	ctx := context.Background()
	key := fakeRecord.Key()
	tests := []struct {
		name string
		call func() error
	}{
		{"sync", func() error { _, err := ro.Sync(ctx, engine.SyncRequest{}); return err }},
		{"link", func() error { return ro.Link(ctx, engine.LinkRequest{Device: key}) }},
		{"unlink", func() error { return ro.Unlink(ctx, engine.DeviceRequest{Device: key}) }},
		{"resend", func() error { _, err := ro.Resend(ctx, engine.ResendRequest{}); return err }},
		{"override", func() error { return ro.Override(ctx, engine.OverrideRequest{}) }},
		{"remove", func() error { return ro.RemovePartnership(ctx, engine.DeviceRequest{}) }},
		{"wipe", func() error { return ro.Wipe(ctx, engine.WipeRequest{}) }},
		{"approve", func() error { _, err := ro.Approve(ctx, engine.PlanRequest{}); return err }},
		{"discard", func() error { return ro.Discard(ctx, engine.PlanRequest{}) }},
		{"cancel", func() error { return ro.Cancel(ctx, "") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, engine.ErrReadOnly) {
				t.Errorf("err = %v, want ErrReadOnly", err)
			}
		})
	}
	if len(f.calls) != 0 {
		t.Errorf("a refused call reached the engine: %v", f.calls)
	}
	if _, err := ro.Sync(ctx, engine.SyncRequest{DryRun: true}); err != nil {
		t.Errorf("a dry run is reading: %v", err)
	}
	if s, err := ro.Status(ctx); err != nil || !s.ReadOnly {
		t.Errorf("status of a read-only client: read_only=%v, %v", s.ReadOnly, err)
	}
}

// memStore is a Maintenance over bytes, failing after failAt bytes when set.
type memStore struct {
	data     []byte
	failAt   int
	problems []error
}

func (m *memStore) Backup(w io.Writer) (int64, error) {
	if m.failAt > 0 {
		n, _ := w.Write(m.data[:m.failAt])
		return int64(n), errors.New("read transaction failed")
	}
	n, err := w.Write(m.data)
	return int64(n), err
}

func (m *memStore) Check() []error { return m.problems }

func TestBackupAndCheckThroughTheSocket(t *testing.T) {
	data := bytes.Repeat([]byte("bbolt page "), 100_000)
	tests := []struct {
		name    string
		store   *memStore
		wantErr string
	}{
		{"whole copy", &memStore{data: data}, ""},
		{"failure mid-stream", &memStore{data: data, failAt: 4096}, "read transaction failed"},
		{"no store", nil, "no store maintenance"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{API: newFake()}
			if tt.store != nil {
				cfg.Store = tt.store
			}
			_, c := serve(t, cfg)
			var buf bytes.Buffer
			n, err := c.Backup(context.Background(), &buf)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || n != int64(len(data)) || !bytes.Equal(buf.Bytes(), data) {
				t.Fatalf("backup: %d bytes, equal %v, err %v", n, bytes.Equal(buf.Bytes(), data), err)
			}
		})
	}

	st := &memStore{problems: []error{errors.New("records: key x holds a bad value")}}
	_, c := serve(t, Config{API: newFake(), Store: st})
	problems, err := c.CheckStore(context.Background())
	if err != nil || len(problems) != 1 || !strings.Contains(problems[0], "bad value") {
		t.Errorf("check = %q, %v", problems, err)
	}
	st.problems = nil
	if problems, err := c.CheckStore(context.Background()); err != nil || len(problems) != 0 {
		t.Errorf("check of a healthy store = %q, %v", problems, err)
	}
}

func TestListenCreatesTheSocketPrivateAndReplacesOnlyStaleOnes(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "easgate.sock")

	// A crashed service's socket: the file is there, nothing accepts.
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	var logs bytes.Buffer
	srv, c := serve(t, Config{API: newFake(), Socket: path, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if !strings.Contains(logs.String(), "replaced a stale control socket") {
		t.Errorf("no log line about the stale socket:\n%s", logs.String())
	}
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode()&fs.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket file: %v %v, want a socket with mode 0600", fi.Mode(), err)
	}
	if _, err := c.Status(context.Background()); err != nil {
		t.Errorf("status through the replaced socket: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want the socket only (the private bind directory is gone)", len(entries))
	}

	// A live one is another service's.
	if _, err := Listen(Config{API: newFake(), Socket: srv.Path()}); !errors.Is(err, ErrSocketInUse) {
		t.Errorf("listen on a live socket: %v, want ErrSocketInUse", err)
	}
	regular := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(regular, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		path string
		want error
	}{
		{"regular file", regular, ErrSocketPath},
		{"too long", filepath.Join(dir, strings.Repeat("x", 120)+".sock"), ErrSocketPath},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Listen(Config{API: newFake(), Socket: tt.path}); !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
	if b, err := os.ReadFile(regular); err != nil || string(b) != "keep me" {
		t.Errorf("the regular file was touched: %q %v", b, err)
	}
}

func TestGroupSocketIsGroupReadable(t *testing.T) {
	gid := os.Getgid()
	srv, c := serve(t, Config{API: newFake(), Group: fmt.Sprint(gid)})
	fi, err := os.Lstat(srv.Path())
	if err != nil || fi.Mode().Perm() != 0o660 {
		t.Fatalf("socket mode %v (%v), want 0660", fi.Mode().Perm(), err)
	}
	if _, err := c.Status(context.Background()); err != nil {
		t.Errorf("status: %v", err)
	}
	if _, err := Listen(Config{API: newFake(), Socket: filepath.Join(t.TempDir(), "s"), Group: "no-such-group-easgate"}); err == nil {
		t.Error("listen with an unknown group succeeded")
	}
}

func TestDialWithoutAService(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "stale.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	tests := []struct {
		name string
		path string
	}{
		{"no file", filepath.Join(dir, "none.sock")},
		{"stale socket", stale},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Dial(context.Background(), tt.path); !errors.Is(err, ErrNoService) {
				t.Errorf("dial: %v, want ErrNoService", err)
			}
		})
	}
}

func TestAuthorize(t *testing.T) {
	member := func(uid uint32) ([]uint32, error) {
		if uid == 2001 {
			return []uint32{100, 4242}, nil
		}
		return []uint32{100}, nil
	}
	tests := []struct {
		name  string
		pol   policy
		peer  creds
		allow bool
	}{
		{"the service's user", policy{self: 990}, creds{uid: 990, gid: 990}, true},
		{"root", policy{self: 990}, creds{uid: 0}, true},
		{"another user, no group", policy{self: 990}, creds{uid: 1000, gid: 1000}, false},
		{"primary group", policy{self: 990, gid: 4242, hasGroup: true, groupsOf: member}, creds{uid: 1000, gid: 4242}, true},
		{"supplementary group from the peer", policy{self: 990, gid: 4242, hasGroup: true}, creds{uid: 1000, gid: 1000, groups: []uint32{4242}}, true},
		{"supplementary group from the user database", policy{self: 990, gid: 4242, hasGroup: true, groupsOf: member}, creds{uid: 2001, gid: 2001}, true},
		{"not a member", policy{self: 990, gid: 4242, hasGroup: true, groupsOf: member}, creds{uid: 1000, gid: 1000}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.pol.authorize(tt.peer)
			if (err == nil) != tt.allow {
				t.Errorf("authorize = %v, want allowed %v", err, tt.allow)
			}
			if err != nil && !errors.Is(err, ErrForbidden) {
				t.Errorf("refusal %v does not wrap ErrForbidden", err)
			}
		})
	}
}

func TestListsStream(t *testing.T) {
	tests := []struct {
		name string
		recs []engine.DeviceRecord
	}{
		{"none", nil},
		{"one", []engine.DeviceRecord{fakeRecord}},
		{"many", func() []engine.DeviceRecord {
			out := make([]engine.DeviceRecord, 5000)
			for i := range out {
				out[i] = fakeRecord
				out[i].DeviceID = fmt.Sprintf("dev%05d", i)
			}
			return out
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, c := serve(t, Config{API: &manyAPI{fakeAPI: newFake(), recs: tt.recs}})
			got, err := c.Devices(context.Background(), engine.DeviceQuery{})
			if err != nil || len(got) != len(tt.recs) {
				t.Fatalf("%d devices, %v; want %d", len(got), err, len(tt.recs))
			}
			for i := range got {
				if got[i].DeviceID != tt.recs[i].DeviceID || got[i].Decision != tt.recs[i].Decision {
					t.Fatalf("device %d = %+v, want %+v", i, got[i], tt.recs[i])
				}
			}
		})
	}
}
