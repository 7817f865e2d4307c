package sim

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
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
	s = &Sim{Dir: opt.Dir}
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
	s.Exchange = exchange.New(exchange.Config{Org: s.Org, Accounts: map[string]string{ServiceUser: password}, Logger: log})
	s.WinRM.Handle("powershell.exe", s.Exchange)
	winrmURL, err := s.WinRM.Start(net.JoinHostPort(host, portAt(port, 0)), nil)
	if err != nil {
		return nil, fmt.Errorf("winrm simulator: %w", err)
	}

	// Intune and Entra ID: Graph and its token endpoint over HTTPS.
	s.Graph = graph.New(s.Org, graph.Options{Log: log})
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
	smtpHost, smtpPort, _ := net.SplitHostPort(s.Info.SMTPAddr)
	cfg := fmt.Sprintf(`# easgate config for the simulated organisation (written by easgate sim).
store: %[1]s/easgate.db
exchange:
  servers: [%[2]s]
  port: %[3]s
  https: false
  allow_insecure_transport: true   # loopback only: the simulator's WinRM speaks plain HTTP
  auth: basic
  username: %[4]q
  password_file: %[1]s/exchange-password
  session: remote
  parallel: 4
intune:
  tenant_id: %[5]s
  client_id: %[6]s
  client_secret_file: %[1]s/graph-secret
  graph_url: %[7]s
  authority_url: %[7]s
  ca_file: %[1]s/ca.pem
notify:
  enabled: true
  smtp: {host: %[8]s, port: %[9]s, starttls: true, ca_file: %[1]s/ca.pem,
         username: %[11]q, password_file: %[1]s/smtp-password}
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
  file: %[1]s/easgate.log
  level: info
control:
  socket: %[1]s/easgate.sock
`, s.Dir, winrmHost, winrmPort, ServiceUser, s.Info.TenantID, s.Info.ClientID, s.Info.GraphURL,
		smtpHost, smtpPort, Sender, SMTPUser)
	if err := os.WriteFile(s.Info.ConfigFile, []byte(cfg), 0o600); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	return nil
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
