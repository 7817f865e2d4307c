package exchange

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"easgate/engine/sim/org"
	"easgate/engine/sim/winrm"
)

// Defaults of a simulated Exchange server.
const (
	DefaultMaxSessions = 18 // PowerShellMaxConcurrency of Exchange's default throttling policy
	// DefaultMaxDeviceDeletesPerMonth is EasMaxDeviceDeletesPerMonth of
	// Exchange's default throttling policy: partnerships of one mailbox
	// Remove-MobileDevice may delete in a calendar month.
	DefaultMaxDeviceDeletesPerMonth = 20
	DefaultPowerShellVersion        = "5.1.17763.6414"
	DefaultExchangeVersion          = "Version 15.2 (Build 1544.4)"
	maxStdin                        = 64 << 20
	maxKeptScripts                  = 10000 // a long-running simulator forgets the older half past this
)

// Config describes a simulated Exchange server.
type Config struct {
	// Org is the organisation the cmdlets read and change. Required.
	Org *org.Org
	// Accounts are the credentials New-PSSession accepts (user name as
	// sent, e.g. CONTOSO\svc-easgate, to password). Nil accepts any
	// non-empty credential.
	Accounts map[string]string
	// Denied lists Exchange cmdlets the account's RBAC roles do not grant;
	// the Exchange session does not have them.
	Denied []string
	// MaxSessions is how many Exchange PowerShell sessions one user may
	// hold at once. Default 18.
	MaxSessions int
	// MaxDeviceDeletesPerMonth is how many partnerships of one mailbox
	// Remove-MobileDevice deletes in a calendar month (UTC). Default 20;
	// negative means unlimited.
	MaxDeviceDeletesPerMonth int
	// PowerShellVersion and ExchangeVersion are what the probe reports.
	PowerShellVersion string
	ExchangeVersion   string
	// Servers are the organisation's Exchange servers, as Get-ExchangeServer
	// lists them. Nil means one: the WinRM host itself, a Mailbox server
	// with client access services (Exchange 2016 and later).
	Servers []ServerInfo
	// Cost is the cost model, applied as real sleeps; nil (the default)
	// answers as fast as the simulator can.
	Cost *Cost
	// Now tells the time of wipe requests and deletions; nil is time.Now.
	Now func() time.Time
	// Logger receives the host's log; nil discards it.
	Logger *slog.Logger
}

// ServerInfo is an Exchange server as Get-ExchangeServer shows it.
type ServerInfo struct {
	Name, Fqdn, Site, ServerRole, AdminDisplayVersion string
	IsClientAccessServer                              bool
}

// Counters are what the host did since it started, for tests and the
// benchmark harness (the WinRM server counts round trips and bytes).
type Counters struct {
	Starts   int64            `json:"starts"`   // powershell.exe processes
	Sessions int64            `json:"sessions"` // Exchange sessions opened (remote or snap-in)
	Scripts  map[string]int64 `json:"scripts"`  // easgate scripts run, by name
	Busy     time.Duration    `json:"busy"`     // time the cost model slept
	// Work is what the cmdlets did, item by item: what the cost model
	// charges for.
	Work Work `json:"work"`
}

// Host is the simulated powershell.exe of an Exchange server. It is a
// winrm.Program.
type Host struct {
	cfg      Config
	log      *slog.Logger
	denied   map[string]bool
	starts   atomic.Int64
	opened   atomic.Int64
	busy     atomic.Int64
	perRun   sync.Map // script name → *atomic.Int64
	work     workCounters
	deleteMu sync.Mutex
	deletes  map[string][]time.Time // lower-cased UPN → Remove-MobileDevice times

	mu       sync.Mutex
	scripts  []string
	sessions map[string]int
}

var _ winrm.Program = (*Host)(nil)

// New returns a host over cfg.Org.
func New(cfg Config) *Host {
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = DefaultMaxSessions
	}
	if cfg.PowerShellVersion == "" {
		cfg.PowerShellVersion = DefaultPowerShellVersion
	}
	if cfg.ExchangeVersion == "" {
		cfg.ExchangeVersion = DefaultExchangeVersion
	}
	if cfg.MaxDeviceDeletesPerMonth == 0 {
		cfg.MaxDeviceDeletesPerMonth = DefaultMaxDeviceDeletesPerMonth
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	denied := map[string]bool{}
	for _, c := range cfg.Denied {
		denied[strings.ToLower(c)] = true
	}
	return &Host{cfg: cfg, log: log.With("component", "sim-exchange"), denied: denied, sessions: map[string]int{},
		deletes: map[string][]time.Time{}}
}

// Counters returns what the host did so far.
func (h *Host) Counters() Counters {
	c := Counters{Starts: h.starts.Load(), Sessions: h.opened.Load(), Scripts: map[string]int64{}, Busy: time.Duration(h.busy.Load()),
		Work: h.work.load()}
	h.perRun.Range(func(k, v any) bool {
		c.Scripts[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	return c
}

// Scripts returns every script text the host received, in order (the
// latest 10,000 at most).
func (h *Host) Scripts() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.scripts...)
}

// Starts returns how many times powershell.exe was started.
func (h *Host) Starts() int { return int(h.starts.Load()) }

// HoldSessions opens n Exchange PowerShell sessions for user, as other
// processes of the same account would, until release is called: scripts
// then find the session budget (MaxSessions) spent.
func (h *Host) HoldSessions(user string, n int) (release func()) {
	key := strings.ToLower(user)
	h.mu.Lock()
	h.sessions[key] += n
	h.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			h.mu.Lock()
			h.sessions[key] -= n
			h.mu.Unlock()
		})
	}
}

// payload is the JSON an easgate script reads from stdin.
type payload struct {
	Session  string   `json:"session"`
	URI      string   `json:"uri"`
	User     string   `json:"user"`
	Password string   `json:"password"`
	Import   []string `json:"import"`
	Since    *string  `json:"since"`
	Stats    bool     `json:"stats"`
	Devices  bool     `json:"devices"` // inventory/2: stream the devices before reading requests
	Edits    []edit   `json:"edits"`
	// The admin scripts' data.
	Mailbox        string `json:"mailbox"`
	DeviceID       string `json:"device_id"`
	AccountOnly    bool   `json:"account_only"`
	Level          string `json:"level"`
	Op             string `json:"op"`
	Characteristic string `json:"characteristic"`
	Query          string `json:"query"`
}

// edit is one Set-CASMailbox of the apply script.
type edit struct {
	ID          string   `json:"id"`
	Mailbox     string   `json:"mailbox"`
	AllowAdd    []string `json:"allow_add"`
	AllowRemove []string `json:"allow_remove"`
	BlockAdd    []string `json:"block_add"`
	BlockRemove []string `json:"block_remove"`
}

// run is one powershell.exe process running an easgate script.
type run struct {
	ctx     context.Context
	host    string // computer name
	user    string // the WinRM user
	script  string
	cmds    []cmdToken
	payload payload
	stdout  io.Writer
	errs    *clixml
	meter   *meter
	in      *bufio.Reader // the rest of stdin, for a script that reads it a line at a time
}

var markerRE = regexp.MustCompile(`(?m)^#\s*easgate-script:\s*([A-Za-z0-9-]+/[0-9]+)\s*$`)

// Run runs powershell.exe.
func (h *Host) Run(ctx context.Context, p *winrm.Process) int {
	h.starts.Add(1)
	errs := &clixml{w: p.Stderr}
	defer errs.end()
	m := &meter{cost: h.cfg.Cost, slept: &h.busy}
	if h.cfg.Cost != nil && !m.charge(ctx, h.cfg.Cost.ProcessStart, 1) {
		return 1
	}
	inv, err := parseArgs(p.Args[1:])
	if err == nil && inv.encoded == "" {
		// -Command, -File or an interactive shell: not something this
		// simulator can interpret.
		errs.errorRecord(&psError{message: "The simulated Exchange host runs only -EncodedCommand scripts.",
			category: "NotImplemented: (:) [], NotSupportedException", errorID: "NotSupported"})
		return 1
	}
	var script string
	if err == nil {
		script, err = decodeCommand(inv.encoded)
	}
	if msg, ok := badArgsMessage(err); ok {
		_, _ = io.WriteString(p.Stderr, msg+"\r\n")
		return exitBadArgs
	}
	h.mu.Lock()
	if len(h.scripts) == maxKeptScripts {
		h.scripts = append(h.scripts[:0], h.scripts[maxKeptScripts/2:]...)
	}
	h.scripts = append(h.scripts, script)
	h.mu.Unlock()

	if !strings.Contains(strings.ReplaceAll(script, " ", ""), "$ProgressPreference='SilentlyContinue'") {
		errs.progress("Preparing modules for first use.")
	}
	var stdin []byte
	var in *bufio.Reader
	switch {
	case readsLines(script):
		// The payload is the first line; the script reads the rest as it runs.
		in = bufio.NewReaderSize(p.Stdin, 64<<10)
		if stdin, err = readLine(in); err != nil && (err != io.EOF || len(stdin) == 0) {
			return 1 // terminated while waiting for stdin
		}
	case readsStdin(script):
		stdin, err = io.ReadAll(io.LimitReader(p.Stdin, maxStdin))
		if err != nil {
			return 1 // terminated while waiting for stdin
		}
	}
	r := &run{ctx: ctx, host: p.Host, user: p.User, script: script, stdout: p.Stdout, errs: errs, meter: m, in: in}
	cmds, functions := scan(script)
	r.cmds = cmds
	if len(stdin) > 0 || readsStdin(script) || in != nil {
		if err := json.Unmarshal(bytes.TrimPrefix(stdin, []byte("\xef\xbb\xbf")), &r.payload); err != nil {
			errs.errorRecord(r.cmdletError("ConvertFrom-Json", "Invalid JSON primitive: "+firstWord(string(stdin))+".",
				"NotSpecified: (:) [ConvertFrom-Json], ArgumentException", "System.ArgumentException,Microsoft.PowerShell.Commands.ConvertFromJsonCommand"))
			return 1
		}
	}
	exchange, release, perr := h.openSession(r)
	if perr != nil {
		if perr != errTerminated {
			errs.errorRecord(perr)
		}
		return 1
	}
	defer release()
	if perr := firstUnknown(script, cmds, functions, exchange); perr != nil {
		errs.errorRecord(perr)
		return 1
	}
	marker := markerRE.FindStringSubmatch(script)
	if marker == nil {
		errs.errorRecord(&psError{message: "The simulated Exchange host runs only easgate scripts, which carry an '# easgate-script: NAME/VERSION' line.",
			category: "NotImplemented: (:) [], NotSupportedException", errorID: "NotSupported"})
		return 1
	}
	name := marker[1]
	h.log.Debug("script started", "script", name, "user", p.User)
	var perrRun *psError
	switch name {
	case "inventory/1":
		perrRun = h.inventory(r)
	case "apply/1":
		perrRun = h.apply(r)
	case "probe/1":
		perrRun = h.probe(r, exchange)
	case "remove/1":
		perrRun = h.remove(r)
	case "wipe/1":
		perrRun = h.wipe(r)
	case "stats/1":
		perrRun = h.stats(r)
	case "orgdefault/1":
		perrRun = h.orgDefault(r)
	case "rule/1":
		perrRun = h.rule(r)
	case "inventory/2":
		perrRun = h.inventoryFed(r)
	case scriptBaselineList, scriptBaselineMailbox, scriptBaselineChange:
		perrRun = h.baseline(r, name)
	case "servers/1":
		perrRun = h.servers(r)
	default:
		perrRun = &psError{message: fmt.Sprintf("The simulated Exchange host does not know the script %q.", name),
			category: "NotImplemented: (:) [], NotSupportedException", errorID: "NotSupported"}
	}
	if perrRun == nil {
		n, _ := h.perRun.LoadOrStore(name, new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
	}
	if perrRun != nil {
		if perrRun != errTerminated {
			errs.errorRecord(perrRun)
		}
		return 1
	}
	return 0
}

// errTerminated ends a script whose output can no longer be written.
var errTerminated = &psError{message: "terminated"}

func readsStdin(script string) bool {
	l := strings.ToLower(script)
	return strings.Contains(l, "[console]::in.readtoend()") || strings.Contains(l, "$input")
}

func firstWord(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, " \r\n\t"); i >= 0 {
		s = s[:i]
	}
	if len(s) > 40 {
		s = s[:40]
	}
	return s
}

// cmdletError is an error record of a cmdlet the script calls, positioned
// at its first call.
func (r *run) cmdletError(cmdlet, message, category, errorID string) *psError {
	e := &psError{command: cmdlet, message: message, category: category, errorID: errorID}
	if ts := calls(r.cmds, cmdlet); len(ts) > 0 {
		e.line, e.char, e.width, e.source = ts[0].line, ts[0].col, len(cmdlet), sourceLine(r.script, ts[0].line)
	}
	return e
}

// openSession gives the script its Exchange cmdlets, as the script's own
// bootstrap would: the snap-in, or a session to the Exchange PowerShell
// endpoint opened with the credential from the payload and imported. It
// returns the Exchange cmdlets the script then has.
func (h *Host) openSession(r *run) (map[string]bool, func(), *psError) {
	have := map[string]bool{}
	none := func() {}
	if r.payload.Session != "remote" {
		if callHas(r.script, r.cmds, "Add-PSSnapin", "Microsoft.Exchange.Management.PowerShell.SnapIn") {
			h.opened.Add(1)
			if h.cfg.Cost != nil && !r.meter.charge(r.ctx, h.cfg.Cost.Snapin, 1) {
				return nil, none, errTerminated
			}
			for k := range exchangeCmdlets {
				if !h.denied[k] {
					have[k] = true
				}
			}
		}
		return have, none, nil
	}
	if !callHas(r.script, r.cmds, "New-PSSession", "-ConfigurationName Microsoft.Exchange") || len(calls(r.cmds, "Import-PSSession")) == 0 {
		return have, none, nil
	}
	server := "localhost"
	if u, err := url.Parse(r.payload.URI); err == nil && u.Hostname() != "" {
		server = u.Hostname()
	}
	fail := func(reason, errorID string) *psError {
		return r.cmdletError("New-PSSession",
			fmt.Sprintf("[%s] Connecting to remote server %s failed with the following error message : %s For more information, see the about_Remote_Troubleshooting Help topic.", server, server, reason),
			"OpenError: (System.Manageme....RemoteRunspace:RemoteRunspace) [New-PSSession], PSRemotingTransportException",
			errorID+",PSSessionOpenFailed")
	}
	if u, err := url.Parse(r.payload.URI); err != nil || !strings.EqualFold(strings.Trim(u.Path, "/"), "PowerShell") {
		return nil, none, fail("The WinRM client sent a request to an HTTP server and got a response saying the requested HTTP URL was not available. This is usually returned by a HTTP server that does not support the WS-Management protocol.", "URLNotAvailable")
	}
	if !h.credentialOK(r.payload.User, r.payload.Password) {
		return nil, none, fail("Access is denied.", "AccessDenied")
	}
	user := strings.ToLower(r.payload.User)
	h.mu.Lock()
	if h.sessions[user] >= h.cfg.MaxSessions {
		h.mu.Unlock()
		return nil, none, fail(fmt.Sprintf("The WS-Management service cannot process the request. Fail to create a runspace because you have exceeded the maximum number of connections allowed : %d for the policy party : MaxConcurrency. Please close existing runspace and try again.", h.cfg.MaxSessions), "-2144108477")
	}
	h.sessions[user]++
	h.mu.Unlock()
	h.opened.Add(1)
	release := func() {
		h.mu.Lock()
		h.sessions[user]--
		h.mu.Unlock()
	}
	for _, name := range r.payload.Import {
		k := strings.ToLower(name)
		if _, ok := exchangeCmdlets[k]; ok && !h.denied[k] {
			have[k] = true
		}
	}
	if h.cfg.Cost != nil && !r.meter.charge(r.ctx, h.cfg.Cost.RemoteSession, 1) {
		release()
		return nil, none, errTerminated
	}
	return have, release, nil
}

func (h *Host) credentialOK(user, password string) bool {
	if user == "" || password == "" {
		return false
	}
	if h.cfg.Accounts == nil {
		return true
	}
	want, ok := h.cfg.Accounts[user]
	return ok && want == password
}
