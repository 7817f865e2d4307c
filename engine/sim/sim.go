package sim

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"easgate/engine/sim/exchange"
	"easgate/engine/sim/graph"
	"easgate/engine/sim/org"
	"easgate/engine/sim/simtls"
	"easgate/engine/sim/smtp"
	"easgate/engine/sim/winrm"
)

// The simulated organisation's service account and mail sender.
const (
	ServiceUser = `CONTOSO\svc-easgate`
	Sender      = "IT Mobile <mobile-admins@contoso.com>"
)

// Options shape a simulated organisation and where it listens.
type Options struct {
	// Listen is the address the simulators bind: its host for all three;
	// a non-zero port is WinRM's, with Graph and SMTP on the next two.
	// Empty means 127.0.0.1:0 (free ports).
	Listen string
	Users  int
	Seed   uint64
	// Dir receives the CA, the secret files, the config file and (through
	// the config) the store and log. Empty means a new temporary directory
	// that Close removes.
	Dir string
	// Now is when the organisation is generated; zero means now.
	Now    time.Time
	Logger *slog.Logger
	// CostScale turns on both simulators' cost models (exchange.DefaultCost
	// and graph.Options.CostScale): 1 is real time, 0.01 a hundredth of
	// it. Zero answers as fast as the simulators can.
	CostScale float64
	// Parallel and ApplyBatch are the exchange.parallel and
	// exchange.apply_batch the written config asks for; zero leaves
	// easgate's defaults (4 and 500).
	Parallel   int
	ApplyBatch int
}

// SMTPUser is the account the simulated receive connector accepts.
const SMTPUser = "svc-easgate-mail@contoso.com"

// Info is the first line `easgate sim` prints (CONTRACTS.md).
type Info struct {
	WinRMURL      string `json:"winrm_url"`
	WinRMUser     string `json:"winrm_user"`
	WinRMPassword string `json:"winrm_password"`
	GraphURL      string `json:"graph_url"`
	AuthorityURL  string `json:"authority_url"`
	TenantID      string `json:"tenant_id"`
	ClientID      string `json:"client_id"`
	ClientSecret  string `json:"client_secret"`
	SMTPAddr      string `json:"smtp_addr"`
	SMTPUser      string `json:"smtp_user"`
	SMTPPassword  string `json:"smtp_password"`
	CAFile        string `json:"ca_file"`
	ConfigFile    string `json:"config_file"`
}

// Sim is a running simulated organisation: Exchange behind WinRM, Intune
// behind Graph, and an SMTP sink.
type Sim struct {
	Org      *org.Org
	WinRM    *winrm.Server
	Exchange *exchange.Host
	Graph    *graph.Server
	SMTP     *smtp.Sink
	CA       *simtls.CA
	Info     Info
	Dir      string

	removeDir bool
	opt       Options
}

// Start generates the organisation and starts the three simulators.
func Start(opt Options) (s *Sim, err error) {
	if opt.Users <= 0 {
		opt.Users = 200
	}
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	host, port, err := listenParts(opt.Listen)
	if err != nil {
		return nil, err
	}
	if opt.CostScale < 0 {
		return nil, fmt.Errorf("cost scale %v: want 0 (off) or more", opt.CostScale)
	}
	s = &Sim{Dir: opt.Dir, opt: opt}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.Dir == "" {
		if s.Dir, err = os.MkdirTemp("", "easgate-sim-*"); err != nil {
			return nil, fmt.Errorf("simulator directory: %w", err)
		}
		s.removeDir = true
	} else if err = os.MkdirAll(s.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("simulator directory: %w", err)
	}
	if s.Dir, err = filepath.Abs(s.Dir); err != nil {
		return nil, err
	}

	s.Org = org.Generate(org.Options{Users: opt.Users, Seed: opt.Seed, Now: opt.Now})
	if s.CA, err = simtls.New(); err != nil {
		return nil, fmt.Errorf("simulator CA: %w", err)
	}
	password := randomSecret()
	smtpPassword := randomSecret()

	// Exchange: powershell.exe on a WinRM server.
	s.WinRM = winrm.New(winrm.Config{Hostname: "EX01", Users: map[string]string{ServiceUser: password}, Logger: log})
	var cost *exchange.Cost
	if opt.CostScale > 0 {
		cost = exchange.DefaultCost(opt.CostScale)
	}
	s.Exchange = exchange.New(exchange.Config{Org: s.Org, Accounts: map[string]string{ServiceUser: password}, Cost: cost, Logger: log})
	s.WinRM.Handle("powershell.exe", s.Exchange)
	winrmURL, err := s.WinRM.Start(net.JoinHostPort(host, portAt(port, 0)), nil)
	if err != nil {
		return nil, fmt.Errorf("winrm simulator: %w", err)
	}

	// Intune and Entra ID: Graph and its token endpoint over HTTPS.
	s.Graph = graph.New(s.Org, graph.Options{Log: log, CostScale: opt.CostScale})
	graphURL, err := s.Graph.Start(net.JoinHostPort(host, portAt(port, 1)), s.CA)
	if err != nil {
		return nil, fmt.Errorf("graph simulator: %w", err)
	}

	// SMTP with STARTTLS, as a receive connector would offer it.
	if s.SMTP, err = smtp.Start(smtp.Options{Addr: net.JoinHostPort(host, portAt(port, 2)), Domain: "mail.contoso.com",
		TLSConfig: s.CA.ServerTLS(), RequireTLS: true, Username: SMTPUser, Password: smtpPassword,
		Spool: filepath.Join(s.Dir, "mail"), Logger: log}); err != nil {
		return nil, fmt.Errorf("smtp sink: %w", err)
	}

	s.Info = Info{
		WinRMURL: winrmURL, WinRMUser: ServiceUser, WinRMPassword: password,
		GraphURL: graphURL, AuthorityURL: graphURL, TenantID: s.Org.TenantID,
		ClientID: s.Graph.ClientID(), ClientSecret: s.Graph.ClientSecret(), SMTPAddr: s.SMTP.Addr(),
		SMTPUser: SMTPUser, SMTPPassword: smtpPassword,
		CAFile: filepath.Join(s.Dir, "ca.pem"), ConfigFile: filepath.Join(s.Dir, "easgate.yaml"),
	}
	if err = s.CA.WriteCertFile(s.Info.CAFile); err != nil {
		return nil, fmt.Errorf("write CA: %w", err)
	}
	if err = s.writeConfig(); err != nil {
		return nil, err
	}
	return s, nil
}

func listenParts(listen string) (host string, port int, err error) {
	if listen == "" {
		return "127.0.0.1", 0, nil
	}
	h, p, err := net.SplitHostPort(listen)
	if err != nil {
		return "", 0, fmt.Errorf("--listen %q: %w", listen, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 || n > 65533 {
		return "", 0, fmt.Errorf("--listen %q: port must be 0 or a port with two free ones after it", listen)
	}
	if h == "" {
		h = "127.0.0.1"
	}
	return h, n, nil
}

func portAt(base, offset int) string {
	if base == 0 {
		return "0"
	}
	return strconv.Itoa(base + offset)
}

func randomSecret() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// writeConfig writes an easgate.yaml that points every section at the
// simulators, with the secrets in 0600 files beside it.
func (s *Sim) writeConfig() error {
	secrets := map[string]string{
		"exchange-password": s.Info.WinRMPassword,
		"graph-secret":      s.Info.ClientSecret,
		"smtp-password":     s.Info.SMTPPassword,
	}
	for name, v := range secrets {
		if err := os.WriteFile(filepath.Join(s.Dir, name), []byte(v+"\n"), 0o600); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	winrmHost, winrmPort, _ := net.SplitHostPort(strings.TrimSuffix(strings.TrimPrefix(s.Info.WinRMURL, "http://"), "/wsman"))
	parallel, batch := s.opt.Parallel, s.opt.ApplyBatch
	if parallel <= 0 {
		parallel = 4
	}
	if batch <= 0 {
		batch = 500
	}
	smtpHost, smtpPort, _ := net.SplitHostPort(s.Info.SMTPAddr)
	path := func(name string) string { return yamlScalar(filepath.Join(s.Dir, name)) }
	cfg := fmt.Sprintf(`# easgate config for the simulated organisation (written by easgate sim).
store: %[14]s
exchange:
  servers: [%[2]s]
  port: %[3]s
  https: false
  allow_insecure_transport: true   # loopback only: the simulator's WinRM speaks plain HTTP
  auth: basic
  username: %[4]q
  password_file: %[15]s
  session: remote
  parallel: %[12]d
  apply_batch: %[13]d
intune:
  tenant_id: %[5]s
  client_id: %[6]s
  client_secret_file: %[16]s
  graph_url: %[7]s
  authority_url: %[7]s
  ca_file: %[17]s
notify:
  enabled: true
  smtp: {host: %[8]s, port: %[9]s, starttls: true, ca_file: %[17]s,
         username: %[11]q, password_file: %[18]s}
  from: %[10]q
safety:
  # The simulated organisation starts with no easgate entries, so its
  # first sync blocks about a quarter of its devices at once.
  max_new_blocks: 50
  max_new_blocks_percent: 40
schedule:
  full: 24h
  quick: 10m
log:
  file: %[19]s
  level: info
control:
  socket: %[20]s
`, "", winrmHost, winrmPort, ServiceUser, s.Info.TenantID, s.Info.ClientID, s.Info.GraphURL,
		smtpHost, smtpPort, Sender, SMTPUser, parallel, batch,
		path("easgate.db"), path("exchange-password"), path("graph-secret"), path("ca.pem"),
		path("smtp-password"), path("easgate.log"), path("easgate.sock"))
	if err := os.WriteFile(s.Info.ConfigFile, []byte(cfg), 0o600); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	return nil
}

// yamlScalar writes a string for the config template: plain when it is
// safe as a plain YAML scalar, single-quoted when it is not (a directory
// with a space, a colon or a quote in its name).
func yamlScalar(v string) string {
	if v != "" && strings.IndexFunc(v, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+", r))
	}) < 0 {
		return v
	}
	return "'" + strings.ReplaceAll(v, "'", "''") + "'"
}

// Close stops the simulators and removes a temporary directory.
func (s *Sim) Close() error {
	var errs []error
	if s.WinRM != nil {
		s.WinRM.Close()
	}
	if s.Graph != nil {
		errs = append(errs, s.Graph.Close())
	}
	if s.SMTP != nil {
		errs = append(errs, s.SMTP.Close())
	}
	if s.removeDir && s.Dir != "" {
		errs = append(errs, os.RemoveAll(s.Dir))
	}
	return errors.Join(errs...)
}

// Counters are what the simulated organisation holds and what the
// simulators did since they started: what a benchmark reads, before and
// after a run, from the process serving them.
type Counters struct {
	Org org.Counts `json:"org"`
	// MailboxesWithDevices counts the mailboxes that have partnerships:
	// those a full inventory reads.
	MailboxesWithDevices int               `json:"mailboxes_with_devices"`
	Exchange             exchange.Counters `json:"exchange"`
	WinRM                winrm.Stats       `json:"winrm"`
	Graph                graph.Stats       `json:"graph"`
	SMTP                 smtp.Stats        `json:"smtp"`
}

// Counters returns the organisation's counts and the simulators' counters.
func (s *Sim) Counters() Counters {
	s.Org.Mu.RLock()
	c := Counters{Org: s.Org.Count()}
	for _, u := range s.Org.Users {
		if len(u.Partnerships) > 0 {
			c.MailboxesWithDevices++
		}
	}
	s.Org.Mu.RUnlock()
	c.Exchange = s.Exchange.Counters()
	c.WinRM = s.WinRM.Stats()
	c.Graph = s.Graph.Stats()
	c.SMTP = s.SMTP.Stats()
	return c
}

// Churn is what changes in the organisation between two runs, as a day
// brings it: new partnerships of phones Intune has never seen, managed
// devices whose compliance flips, and partnerships whose phones get
// enrolled. Round picks different users and devices each time.
type Churn struct {
	New        int `json:"new"`
	Compliance int `json:"compliance"`
	Enroll     int `json:"enroll"`
	Round      int `json:"round"`
}

// ChurnOf returns churn of about percent of users' worth of events, split
// evenly between the three kinds.
func ChurnOf(users int, percent float64, round int) Churn {
	n := max(int(float64(users)*percent/100+0.5), 3)
	return Churn{New: n / 3, Compliance: n / 3, Enroll: n - 2*(n/3), Round: round}
}

// Churn applies c at now and reports how many changes of each kind it made
// (fewer than asked when the organisation has too few candidates).
func (s *Sim) Churn(c Churn, now time.Time) (Churn, error) {
	o := s.Org
	o.Mu.Lock()
	defer o.Mu.Unlock()
	done := Churn{Round: c.Round}
	users := len(o.Users)
	if users == 0 {
		return done, errors.New("churn: the organisation has no users")
	}
	now = now.UTC().Truncate(time.Second)
	for i := range c.New {
		u := o.Users[(c.Round*7919+i*104729)%users]
		p := &org.Partnership{DeviceID: fmt.Sprintf("ApplCH%04d%06d", c.Round%10000, i), DeviceType: "iPhone",
			DeviceModel: "iPhone17C3", DeviceOS: "iOS 18.3.2 22D82", UserAgent: "Apple-iPhone17C3/2204.82",
			FriendlyName: u.DisplayName + "'s iPhone", FirstSync: now, LastSync: now, WhenChanged: now}
		if err := o.AddPartnership(u.UPN, p); err != nil {
			continue // at the mailbox's partnership limit
		}
		done.New++
	}
	reported := map[string]bool{}
	var merged []*org.ManagedDevice
	for _, md := range o.Managed {
		if md.EASDeviceID != "" {
			reported[strings.ToLower(md.EASDeviceID)] = true
			merged = append(merged, md)
		}
	}
	for i := 0; i < c.Compliance && len(merged) > 0; i++ {
		md := merged[(c.Round*15485863+i*7919)%len(merged)]
		state := "noncompliant"
		if md.ComplianceState == "noncompliant" {
			state = "compliant"
		}
		if err := o.SetCompliance(md.ID, state, now); err != nil {
			return done, fmt.Errorf("churn: %w", err)
		}
		done.Compliance++
	}
	for i := 0; done.Enroll < c.Enroll && i < users; i++ {
		u := o.Users[(c.Round*32452843+i*7919)%users]
		for _, p := range u.Partnerships {
			if p.ClientType != org.ClientEAS || reported[strings.ToLower(p.DeviceID)] || !strings.HasPrefix(p.DeviceID, "Appl") {
				continue
			}
			if _, err := o.Enroll(u.UPN, p.DeviceID, "compliant", true, now); err != nil {
				return done, fmt.Errorf("churn: %w", err)
			}
			reported[strings.ToLower(p.DeviceID)] = true
			done.Enroll++
			break
		}
	}
	return done, nil
}

// ServeCommands answers commands read from r, one a line, with one JSON
// line each on w, until r ends or ctx is done: `counters` (Counters),
// `churn {"new":N,"compliance":N,"enroll":N,"round":R}` (the churn made),
// or {"error":"…"}. `easgate sim --commands` serves its stdin so, for a
// benchmark that drives the simulators from another process.
func (s *Sim) ServeCommands(ctx context.Context, r io.Reader, w io.Writer) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 1<<20)
	enc := json.NewEncoder(w)
	for sc.Scan() {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		verb, arg, _ := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		var answer any
		switch verb {
		case "":
			continue
		case "counters":
			answer = map[string]Counters{"counters": s.Counters()}
		case "churn":
			var c Churn
			if err := json.Unmarshal([]byte(arg), &c); err != nil {
				answer = map[string]string{"error": "churn: " + err.Error()}
				break
			}
			done, err := s.Churn(c, time.Now())
			if err != nil {
				answer = map[string]string{"error": err.Error()}
				break
			}
			answer = map[string]Churn{"churn": done}
		default:
			answer = map[string]string{"error": fmt.Sprintf("unknown command %q: want counters or churn", verb)}
		}
		if err := enc.Encode(answer); err != nil {
			return fmt.Errorf("answer command: %w", err)
		}
	}
	return sc.Err()
}
