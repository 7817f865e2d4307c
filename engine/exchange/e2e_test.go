package exchange_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"easgate/engine"
	"easgate/engine/exchange"
	simexchange "easgate/engine/sim/exchange"
	"easgate/engine/sim/org"
	"easgate/engine/sim/simtls"
	simwinrm "easgate/engine/sim/winrm"
)

const (
	user     = `CONTOSO\svc-easgate`
	password = `pa$$w0rd "quoted" ;&|`
)

var now = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// env is an Exchange organisation simulated end to end: the org, one or
// more Exchange servers (each a powershell.exe host over the org on its
// own simulated WinRM server, started on 127.0.0.1 with Start), and the
// adapter's client talking to them through masterzen/winrm.
type env struct {
	org    *org.Org
	host   *simexchange.Host // the first server's
	winrm  *simwinrm.Server  // the first server
	hosts  []*simexchange.Host
	winrms []*simwinrm.Server
	ca     *simtls.CA
	client *exchange.Client
}

type envOption func(*envConfig)

type envConfig struct {
	tls      bool
	servers  int
	winrm    simwinrm.Config
	exchange simexchange.Config
	client   exchange.Config
	program  func(simwinrm.Program) simwinrm.Program // wraps the host
	noPS     bool
	front    func(t testing.TB, addr string) string // puts something in front of each server
}

func withTLS(c *envConfig) { c.tls = true }

func newEnv(t testing.TB, o *org.Org, opts ...envOption) *env {
	t.Helper()
	cfg := envConfig{
		servers:  1,
		winrm:    simwinrm.Config{Hostname: "EX01", Users: map[string]string{user: password}},
		exchange: simexchange.Config{Org: o, Accounts: map[string]string{user: password}},
		client: exchange.Config{Username: user, Password: password, Session: exchange.SessionRemote,
			AllowInsecureTransport: true},
	}
	for _, opt := range opts {
		opt(&cfg)
	}
	e := &env{org: o}
	var tlsConfig *tls.Config
	if cfg.tls {
		ca, err := simtls.New()
		if err != nil {
			t.Fatal(err)
		}
		e.ca, tlsConfig = ca, ca.ServerTLS()
		cfg.client.HTTPS = true
		if !cfg.client.InsecureSkipVerify && cfg.client.CAPEM == nil {
			cfg.client.CAPEM = ca.CertPEM()
		}
	}
	var servers []string
	for i := range cfg.servers {
		wc := cfg.winrm
		wc.Hostname = fmt.Sprintf("EX%02d", i+1)
		srv := simwinrm.New(wc)
		host := simexchange.New(cfg.exchange)
		var prog simwinrm.Program = host
		if cfg.program != nil {
			prog = cfg.program(host)
		}
		if !cfg.noPS {
			srv.Handle("powershell.exe", prog)
		}
		if _, err := srv.Start("127.0.0.1:0", tlsConfig); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.Close)
		e.winrms, e.hosts = append(e.winrms, srv), append(e.hosts, host)
		addr := srv.Addr()
		if cfg.front != nil {
			addr = cfg.front(t, addr)
		}
		servers = append(servers, addr)
	}
	e.winrm, e.host = e.winrms[0], e.hosts[0]
	cfg.client.Servers = servers
	client, err := exchange.New(cfg.client, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	e.client = client
	return e
}

// shellsOpen is how many shells are open on every server together.
func (e *env) shellsOpen() int64 {
	var n int64
	for _, s := range e.winrms {
		n += s.Stats().ShellsOpen
	}
	return n
}

func generated(users int) *org.Org {
	return org.Generate(org.Options{Users: users, Seed: 7, Now: now})
}

// expectedInventory is what Exchange holds, read from the org directly.
func expectedInventory(o *org.Org, since time.Time) ([]engine.Mailbox, []engine.EASDevice) {
	o.Mu.RLock()
	defer o.Mu.RUnlock()
	var mbx []engine.Mailbox
	var devs []engine.EASDevice
	for _, u := range o.Users {
		held := false
		for _, p := range u.Partnerships {
			if !since.IsZero() && p.FirstSync.Before(since) {
				continue
			}
			held = true
			state, reason := o.AccessOf(u, p)
			devs = append(devs, engine.EASDevice{
				Mailbox: u.UPN, PrimarySMTP: u.PrimarySMTP, Identity: o.Identity(u, p), DeviceID: p.DeviceID,
				DeviceType: p.DeviceType, DeviceModel: p.DeviceModel, DeviceOS: p.DeviceOS, UserAgent: p.UserAgent,
				ClientType: p.ClientType, AccessState: engine.AccessState(state), AccessReason: reason,
				FirstSync: p.FirstSync.UTC(), LastSync: p.LastSync.UTC(), WhenChanged: p.WhenChanged.UTC(),
			})
		}
		if !held {
			continue
		}
		m := engine.Mailbox{UPN: u.UPN, PrimarySMTP: u.PrimarySMTP, Allowed: orEmpty(u.Allowed), Blocked: orEmpty(u.Blocked)}
		for _, a := range u.ProxyAddresses {
			if strings.HasPrefix(strings.ToLower(a), "smtp:") {
				m.Addresses = append(m.Addresses, a[5:])
			}
		}
		mbx = append(mbx, m)
	}
	slices.SortFunc(mbx, func(a, b engine.Mailbox) int { return strings.Compare(strings.ToLower(a.UPN), strings.ToLower(b.UPN)) })
	slices.SortFunc(devs, func(a, b engine.EASDevice) int { return strings.Compare(string(a.Key()), string(b.Key())) })
	return mbx, devs
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Clone(s)
}

func checkInventory(t *testing.T, inv *engine.ExchangeInventory, o *org.Org, since time.Time) {
	t.Helper()
	if !inv.Complete() {
		t.Fatalf("inventory incomplete: %v", inv.Problems)
	}
	wantM, wantD := expectedInventory(o, since)
	if len(inv.Mailboxes) != len(wantM) || len(inv.Devices) != len(wantD) {
		t.Fatalf("got %d mailboxes and %d devices, want %d and %d", len(inv.Mailboxes), len(inv.Devices), len(wantM), len(wantD))
	}
	for i := range wantM {
		g, w := inv.Mailboxes[i], wantM[i]
		if g.UPN != w.UPN || g.PrimarySMTP != w.PrimarySMTP || !slices.Equal(g.Addresses, w.Addresses) ||
			!slices.Equal(g.Allowed, w.Allowed) || !slices.Equal(g.Blocked, w.Blocked) {
			t.Errorf("mailbox %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
	for i := range wantD {
		g, w := inv.Devices[i], wantD[i]
		if !g.FirstSync.Equal(w.FirstSync) || !g.LastSync.Equal(w.LastSync) || !g.WhenChanged.Equal(w.WhenChanged) {
			t.Errorf("device %s times: got %v %v %v, want %v %v %v", w.DeviceID, g.FirstSync, g.LastSync, g.WhenChanged, w.FirstSync, w.LastSync, w.WhenChanged)
		}
		g.FirstSync, g.LastSync, g.WhenChanged = w.FirstSync, w.LastSync, w.WhenChanged
		if g != w {
			t.Errorf("device %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
}

func TestFullInventoryMatchesTheOrg(t *testing.T) {
	o := generated(300)
	e := newEnv(t, o)
	inv, err := e.client.Inventory(context.Background(), engine.InventoryQuery{})
	if err != nil {
		t.Fatal(err)
	}
	checkInventory(t, inv, o, time.Time{})
	if inv.Quick || inv.Server != e.winrm.Addr() {
		t.Errorf("quick %v server %q", inv.Quick, inv.Server)
	}
	if inv.Org.DefaultAccessLevel != "Allow" || len(inv.Org.AdminMailRecipients) != 1 {
		t.Errorf("org settings %+v", inv.Org)
	}
	if len(inv.Rules) != 1 || inv.Rules[0] != (engine.DeviceAccessRule{Characteristic: "DeviceModel", QueryString: "Nokia Lumia 930", AccessLevel: "Block"}) {
		t.Errorf("rules %+v", inv.Rules)
	}
	outlook := 0
	for _, d := range inv.Devices {
		if !d.IsEAS() {
			outlook++
		}
	}
	if outlook == 0 {
		t.Error("no Outlook (non-EAS) partnerships came through with their client type")
	}
	if got := e.host.Starts(); got != 1 {
		t.Errorf("powershell started %d times, want once", got)
	}
	if h := e.client.Health(); len(h) != 1 || !h[0].InUse || !h[0].OK || h[0].Name != e.winrm.Addr() {
		t.Errorf("health %+v", h)
	}
}

func TestQuickInventoryReadsNewDevicesAndTheirMailboxes(t *testing.T) {
	o := generated(300)
	e := newEnv(t, o)
	since := now.Add(-20 * 24 * time.Hour)
	inv, err := e.client.Inventory(context.Background(), engine.InventoryQuery{Since: since})
	if err != nil {
		t.Fatal(err)
	}
	if !inv.Quick || !inv.Since.Equal(since) {
		t.Errorf("quick %v since %v", inv.Quick, inv.Since)
	}
	checkInventory(t, inv, o, since)
	if len(inv.Devices) == 0 || len(inv.Devices) > 60 {
		t.Errorf("%d devices first synced in 20 days: want a handful", len(inv.Devices))
	}
}

func TestApplyChangesChangesExactlyTheListsAndIsIdempotent(t *testing.T) {
	o := generated(50)
	e := newEnv(t, o)
	o.Mu.RLock()
	var changes []engine.Change
	var adminAllowed, blockMe, allowMe *org.User
	for _, u := range o.Users {
		switch {
		case len(u.Allowed) > 0 && adminAllowed == nil:
			adminAllowed = u
			changes = append(changes, engine.Change{Mailbox: u.UPN, DeviceID: u.Allowed[0], List: engine.ListAllowed, Op: engine.OpRemove, Reason: "test"})
		case len(u.Partnerships) >= 2 && blockMe == nil:
			blockMe = u
			for _, p := range u.Partnerships {
				changes = append(changes, engine.Change{Mailbox: strings.ToUpper(u.UPN), DeviceID: p.DeviceID, List: engine.ListBlocked, Op: engine.OpAdd, Reason: "test"})
			}
		case len(u.Partnerships) == 1 && allowMe == nil:
			allowMe = u
			changes = append(changes, engine.Change{Mailbox: u.PrimarySMTP, DeviceID: u.Partnerships[0].DeviceID, List: engine.ListAllowed, Op: engine.OpAdd, Reason: "test"})
		}
	}
	o.Mu.RUnlock()
	if adminAllowed == nil || blockMe == nil || allowMe == nil {
		t.Fatal("the generated org lacks the mailboxes this test needs")
	}
	changes = append(changes, engine.Change{Mailbox: "nobody@contoso.com", DeviceID: "ApplNOBODY", List: engine.ListBlocked, Op: engine.OpAdd})
	snapshot := func() map[string][2][]string {
		o.Mu.RLock()
		defer o.Mu.RUnlock()
		m := map[string][2][]string{}
		for _, u := range o.Users {
			m[u.UPN] = [2][]string{slices.Clone(u.Allowed), slices.Clone(u.Blocked)}
		}
		return m
	}
	before := snapshot()
	for round := 1; round <= 2; round++ {
		results, err := e.client.ApplyChanges(context.Background(), changes)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if len(results) != len(changes) {
			t.Fatalf("round %d: %d results for %d changes", round, len(results), len(changes))
		}
		for i, r := range results {
			wantOK := i < len(changes)-1
			if r.OK != wantOK || r.Transient || r.Change != changes[i] {
				t.Errorf("round %d, change %d: %+v", round, i, r)
			}
		}
		if last := results[len(results)-1]; !strings.Contains(last.Error, "couldn't be found") {
			t.Errorf("unknown mailbox: error %q, want Exchange's not-found error", last.Error)
		}
		after := snapshot()
		for upn, lists := range after {
			want := before[upn]
			switch upn {
			case adminAllowed.UPN:
				want[0] = want[0][1:]
			case blockMe.UPN:
				for _, p := range blockMe.Partnerships {
					want[1] = append(want[1], p.DeviceID)
				}
			case allowMe.UPN:
				want[0] = append(want[0], allowMe.Partnerships[0].DeviceID)
			}
			if !slices.Equal(lists[0], want[0]) || !slices.Equal(lists[1], want[1]) {
				t.Errorf("round %d: %s lists %v, want %v", round, upn, lists, want)
			}
		}
	}
	if got := e.host.Starts(); got != 2 {
		t.Errorf("powershell started %d times for two calls, want 2", got)
	}
	inv, err := e.client.Inventory(context.Background(), engine.InventoryQuery{})
	if err != nil {
		t.Fatal(err)
	}
	checkInventory(t, inv, o, time.Time{})
	for _, d := range inv.Devices {
		if strings.EqualFold(d.Mailbox, blockMe.UPN) && (d.AccessState != engine.StateBlocked || d.AccessReason != "Individual") {
			t.Errorf("blocked device %s reads %s/%s", d.DeviceID, d.AccessState, d.AccessReason)
		}
	}
}

func TestApplyOrdersAChangeThatUndoesAnEarlierOne(t *testing.T) {
	o := generated(5)
	e := newEnv(t, o)
	u := o.Users[0]
	id := u.Partnerships[0].DeviceID
	changes := []engine.Change{
		{Mailbox: u.UPN, DeviceID: id, List: engine.ListBlocked, Op: engine.OpAdd},
		{Mailbox: u.UPN, DeviceID: id, List: engine.ListBlocked, Op: engine.OpRemove},
		{Mailbox: u.UPN, DeviceID: id, List: engine.ListAllowed, Op: engine.OpAdd},
		{Mailbox: u.UPN, DeviceID: "", List: engine.ListAllowed, Op: engine.OpAdd},
		{Mailbox: u.UPN, DeviceID: strings.Repeat("X", 33), List: engine.ListAllowed, Op: engine.OpAdd},
	}
	results, err := e.client.ApplyChanges(context.Background(), changes)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, true, true, false, false} {
		if results[i].OK != want {
			t.Errorf("change %d: %+v", i, results[i])
		}
	}
	o.Mu.RLock()
	defer o.Mu.RUnlock()
	if len(u.Blocked) != 0 || !slices.Contains(u.Allowed, id) {
		t.Errorf("allowed %v blocked %v: want the device allowed and not blocked", u.Allowed, u.Blocked)
	}
}

// corrupting wraps powershell.exe so that one stdout line arrives broken.
func corrupting(lineNo int) envOption {
	return func(c *envConfig) {
		c.program = func(p simwinrm.Program) simwinrm.Program {
			return simwinrm.ProgramFunc(func(ctx context.Context, proc *simwinrm.Process) int {
				cp := *proc
				cp.Stdout = &lineCorrupter{w: proc.Stdout, target: lineNo}
				return p.Run(ctx, &cp)
			})
		}
	}
}

type lineCorrupter struct {
	w      io.Writer
	target int
	line   int
}

func (c *lineCorrupter) Write(b []byte) (int, error) {
	out := make([]byte, 0, len(b))
	for _, ch := range b {
		if ch == '\n' {
			c.line++
		}
		if c.line == c.target-1 && ch == '{' {
			ch = '<' // the target line no longer starts a JSON object
		}
		out = append(out, ch)
	}
	if _, err := c.w.Write(out); err != nil {
		return 0, err
	}
	return len(b), nil
}

func TestMalformedLineMakesTheInventoryIncomplete(t *testing.T) {
	o := generated(40)
	e := newEnv(t, o, corrupting(6))
	inv, err := e.client.Inventory(context.Background(), engine.InventoryQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if inv.Complete() {
		t.Fatal("inventory complete despite a malformed line")
	}
	if !strings.Contains(inv.Problems[0], "stdout line 6 is malformed") {
		t.Errorf("problems %q: want line 6 named", inv.Problems)
	}
	_, devs := expectedInventory(o, time.Time{})
	if len(inv.Devices) != len(devs)-1 {
		t.Errorf("%d devices, want all but the broken one (%d)", len(inv.Devices), len(devs)-1)
	}
}

// slow delays powershell.exe's start, as a cold Exchange session does.
func slow(d time.Duration) envOption {
	return func(c *envConfig) {
		c.program = func(p simwinrm.Program) simwinrm.Program {
			return simwinrm.ProgramFunc(func(ctx context.Context, proc *simwinrm.Process) int {
				select {
				case <-time.After(d):
				case <-ctx.Done():
					return 1
				}
				return p.Run(ctx, proc)
			})
		}
	}
}

func TestReceiveLongPollsAndTheClientRetries(t *testing.T) {
	t.Parallel()
	o := generated(20)
	e := newEnv(t, o, slow(2500*time.Millisecond), func(c *envConfig) { c.client.OperationTimeout = time.Second })
	start := time.Now()
	inv, err := e.client.Inventory(context.Background(), engine.InventoryQuery{})
	if err != nil {
		t.Fatal(err)
	}
	checkInventory(t, inv, o, time.Time{})
	st := e.winrm.Stats()
	if st.TimedOut < 2 {
		t.Errorf("TimedOut faults = %d, want ≥ 2: receives must wait up to OperationTimeout (PT1S)", st.TimedOut)
	}
	if took := time.Since(start); took < 2500*time.Millisecond {
		t.Errorf("took %v, less than the delay", took)
	}
}

func TestCancelEndsTheCommandAndDeletesTheShell(t *testing.T) {
	t.Parallel()
	o := generated(5)
	e := newEnv(t, o, slow(time.Hour))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := e.client.Inventory(ctx, engine.InventoryQuery{})
	if !errors.Is(err, exchange.ErrConnection) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a connection error wrapping the deadline", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("returned after %v", took)
	}
	if st := e.winrm.Stats(); st.ShellsOpen != 0 {
		t.Errorf("%d shells left open", st.ShellsOpen)
	}
}

func TestPowerShellErrorsBecomeReadableErrors(t *testing.T) {
	tests := []struct {
		name  string
		opt   envOption
		setup func(*env)
		want  []string
		is    error
	}{
		{name: "cmdlet the role lacks", opt: func(c *envConfig) { c.exchange.Denied = []string{"Get-MobileDevice"} },
			want: []string{"The term 'Get-MobileDevice' is not recognized as the name of a cmdlet, function, script file, or operable program."}, is: exchange.ErrScript},
		{name: "session credential refused", opt: func(c *envConfig) { c.exchange.Accounts = map[string]string{user: "other"} },
			want: []string{"New-PSSession : [127.0.0.1] Connecting to remote server 127.0.0.1 failed", "Access is denied."}, is: exchange.ErrScript},
		{name: "session budget spent", setup: func(e *env) { e.host.HoldSessions(user, simexchange.DefaultMaxSessions) },
			want: []string{"exceeded the maximum number of connections allowed : 18"}, is: exchange.ErrConnection},
		{name: "snap-in not on the server", opt: func(c *envConfig) {
			c.client.Session = exchange.SessionSnapin
			c.exchange.Denied = []string{"Get-ActiveSyncOrganizationSettings"}
		},
			want: []string{"'Get-ActiveSyncOrganizationSettings' is not recognized"}, is: exchange.ErrScript},
		{name: "no powershell.exe", opt: func(c *envConfig) { c.noPS = true },
			want: []string{"'powershell.exe' is not recognized as an internal or external command, operable program or batch file."}, is: exchange.ErrScript},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []envOption
			if tt.opt != nil {
				opts = append(opts, tt.opt)
			}
			e := newEnv(t, generated(3), opts...)
			if tt.setup != nil {
				tt.setup(e)
			}
			_, err := e.client.Inventory(context.Background(), engine.InventoryQuery{})
			if err == nil || !errors.Is(err, tt.is) {
				t.Fatalf("err = %v, want %v", err, tt.is)
			}
			for _, w := range tt.want {
				if !strings.Contains(strings.Join(strings.Fields(err.Error()), " "), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), password) || strings.Contains(err.Error(), "_x000D_") || strings.Contains(err.Error(), "<S ") {
				t.Errorf("error %q is not clean text", err)
			}
		})
	}
}

func TestTestReportsTheServer(t *testing.T) {
	tests := []struct {
		name    string
		opts    []envOption
		missing []string
	}{
		{name: "http"},
		{name: "https with the CA", opts: []envOption{withTLS}},
		{name: "https skipping verification", opts: []envOption{func(c *envConfig) { c.tls, c.client.InsecureSkipVerify = true, true }}},
		{name: "snap-in", opts: []envOption{func(c *envConfig) { c.client.Session = exchange.SessionSnapin }}},
		{name: "missing cmdlet", opts: []envOption{func(c *envConfig) { c.exchange.Denied = []string{"Set-CASMailbox"} }}, missing: []string{"Set-CASMailbox"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, generated(2), tt.opts...)
			rep, err := e.client.Test(context.Background())
			if tt.missing == nil && err != nil {
				t.Fatal(err)
			}
			if tt.missing != nil && !errors.Is(err, exchange.ErrMissingCmdlets) {
				t.Fatalf("err = %v, want ErrMissingCmdlets", err)
			}
			if len(rep.Servers) != 1 {
				t.Fatalf("report %+v", rep)
			}
			sr := rep.Servers[0]
			if sr.Hostname != "EX01" || sr.PowerShell == "" || sr.ExchangeVersion == "" || !slices.Equal(sr.Missing, tt.missing) || sr.OK != (tt.missing == nil) {
				t.Errorf("report %+v", sr)
			}
			var steps []string
			for _, st := range sr.Steps {
				steps = append(steps, fmt.Sprintf("%s:%v", st.Name, st.OK))
			}
			want := "connect:true authenticate:true session:true permissions:" + fmt.Sprint(tt.missing == nil)
			if got := strings.Join(steps, " "); got != want {
				t.Errorf("steps %s, want %s", got, want)
			}
			if rep.InUse != e.winrm.Addr() || len(rep.Health) != 1 || !rep.Health[0].InUse {
				t.Errorf("in use %q, health %+v", rep.InUse, rep.Health)
			}
			if tt.missing == nil && (len(rep.ClientAccess) != 1 || rep.ClientAccess[0].Name != "EX01" || rep.ClientAccess[0].Roles != "Mailbox") {
				t.Errorf("client access servers %+v", rep.ClientAccess)
			}
			if tt.name == "https with the CA" && !strings.Contains(sr.Steps[0].Detail, "TLS 1.3") {
				t.Errorf("connect step %+v does not name the TLS version", sr.Steps[0])
			}
		})
	}
}

func TestUntrustedCertificateIsRefused(t *testing.T) {
	// Every httptest server shares one certificate: trust another CA.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Other CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, generated(2), func(c *envConfig) {
		c.tls = true
		c.client.CAPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	})
	for _, call := range []func() error{
		func() error { _, err := e.client.Test(context.Background()); return err },
		func() error { _, err := e.client.Inventory(context.Background(), engine.InventoryQuery{}); return err },
	} {
		err := call()
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) || !errors.Is(err, exchange.ErrTLS) || !errors.Is(err, exchange.ErrConnection) {
			t.Fatalf("err = %v, want an unknown-authority TLS error", err)
		}
	}
}

func TestWrongWinRMPassword(t *testing.T) {
	e := newEnv(t, generated(2), func(c *envConfig) { c.client.Password = "wrong" })
	_, err := e.client.Inventory(context.Background(), engine.InventoryQuery{})
	if !errors.Is(err, exchange.ErrUnauthorized) || strings.Contains(err.Error(), "wrong") {
		t.Fatalf("err = %v, want ErrUnauthorized without the password", err)
	}
}

func TestHostileDeviceFieldsAreData(t *testing.T) {
	o := org.New("contoso.com", "tenant")
	u := &org.User{ID: "u1", DisplayName: `Zoë "Z" O'Brien, Jr.`, UPN: "zoe@contoso.com", PrimarySMTP: "zoe@contoso.com",
		ProxyAddresses: []string{"SMTP:zoe@contoso.com", "smtp:zoë@contoso.com"}}
	o.AddUser(u)
	hostile := []string{
		`a"b'c$(x)` + "`;\n😀é", // a device ID: 32 bytes at most
		`'; Remove-Mailbox -Identity * -Confirm:$false; '`,
		"$(Invoke-Expression 'calc')`n`r\r\n\x00<S S=\"Error\">",
		`"); Set-CASMailbox x -ActiveSyncBlockedDeviceIDs $null; ("`,
		"Ünïcödé ☃ 漢字 \u202e\u2028 \\u0022",
	}
	o.Mu.Lock()
	if err := o.AddPartnership(u.UPN, &org.Partnership{DeviceID: hostile[0], DeviceType: hostile[1], DeviceModel: hostile[2],
		DeviceOS: hostile[3], UserAgent: hostile[4], FirstSync: now.Add(-time.Hour), LastSync: now, WhenChanged: now}); err != nil {
		t.Fatal(err)
	}
	o.Mu.Unlock()
	e := newEnv(t, o)
	inv, err := e.client.Inventory(context.Background(), engine.InventoryQuery{})
	if err != nil {
		t.Fatal(err)
	}
	checkInventory(t, inv, o, time.Time{})
	d := inv.Devices[0]
	if d.DeviceID != hostile[0] || d.DeviceType != hostile[1] || d.DeviceModel != hostile[2] || d.DeviceOS != hostile[3] || d.UserAgent != hostile[4] {
		t.Fatalf("device fields changed on the way: %+v", d)
	}
	results, err := e.client.ApplyChanges(context.Background(), []engine.Change{
		{Mailbox: d.Mailbox, DeviceID: d.DeviceID, List: engine.ListBlocked, Op: engine.OpAdd},
	})
	if err != nil || !results[0].OK {
		t.Fatalf("apply: %v %+v", err, results)
	}
	inv, err = e.client.Inventory(context.Background(), engine.InventoryQuery{Since: now.Add(-2 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Mailboxes) != 1 || !slices.Equal(inv.Mailboxes[0].Blocked, []string{hostile[0]}) || inv.Devices[0].AccessState != engine.StateBlocked {
		t.Errorf("after blocking: mailboxes %+v devices %+v", inv.Mailboxes, inv.Devices)
	}
	if !slices.Equal(inv.Mailboxes[0].Addresses, []string{"zoe@contoso.com", "zoë@contoso.com"}) {
		t.Errorf("addresses %q", inv.Mailboxes[0].Addresses)
	}
	known := map[string]bool{}
	for _, s := range exchange.Scripts() {
		known[s.Text] = true
	}
	for _, s := range e.host.Scripts() {
		if !known[s] {
			t.Errorf("the server received a script text the adapter does not list:\n%s", s)
		}
		if strings.Contains(s, password) {
			t.Error("a script text carries the password")
		}
	}
	if n := len(e.host.Scripts()); n != 3 {
		t.Errorf("%d scripts received, want 3", n)
	}
}
