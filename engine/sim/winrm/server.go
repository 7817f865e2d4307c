package winrm

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults, as a Windows server ships them.
const (
	DefaultMaxShellsPerUser = 30     // winrm/config/winrs MaxShellsPerUser
	DefaultMaxRequestSize   = 512000 // winrm/config MaxEnvelopeSizekb = 500
	DefaultMaxTimeout       = 60 * time.Second
	DefaultIdleTimeout      = 2 * time.Hour
	defaultOutputBuffer     = 1 << 20 // per stream, before a program's writes block
)

// Config describes a simulated server.
type Config struct {
	// Hostname is the computer name `hostname` prints and faults carry.
	// Default "EX01".
	Hostname string
	// Users maps user names (as the client sends them, e.g.
	// CONTOSO\svc-easgate) to passwords, for Basic and NTLM
	// authentication. NTLM finds DOMAIN\user or the bare user name, in any
	// case.
	Users map[string]string
	// Domain is the NetBIOS domain name the NTLM challenge carries.
	// Default "CONTOSO".
	Domain string
	// DisableBasic refuses Basic authentication, as Windows' WinRM service
	// does by default (winrm/config/service/auth Basic=false).
	DisableBasic bool
	// DisableNegotiate refuses Negotiate (NTLM) authentication.
	DisableNegotiate bool
	// MaxShellsPerUser is the per-user shell quota. Default 30.
	MaxShellsPerUser int
	// MaxRequestSize is the largest request envelope accepted, in bytes.
	// Default 512,000 (MaxEnvelopeSizekb 500).
	MaxRequestSize int
	// MaxTimeout caps a request's OperationTimeout. Default 60 s
	// (MaxTimeoutms 60000).
	MaxTimeout time.Duration
	// OutputBuffer is how many bytes of a stream the server holds before
	// the program's writes block. Default 1 MiB.
	OutputBuffer int
	// IdleTimeout closes a shell no request used for this long, as
	// winrm/config/winrs IdleTimeout does; it is checked when a shell is
	// created. Default 2 hours.
	IdleTimeout time.Duration
	// Logger receives the server's log; nil discards it.
	Logger *slog.Logger
}

// Stats are the server's counters since it started.
type Stats struct {
	Requests        int64 // authenticated requests
	Unauthorized    int64 // requests refused with 401 (not counting NTLM challenges)
	NTLMChallenges  int64 // NTLM challenges sent (401 with a CHALLENGE_MESSAGE)
	NTLMLogons      int64 // NTLM handshakes that authenticated a connection
	Injected        int64 // requests an injected Fault hit
	ShellsOpen      int64 // shells open now
	ShellsCreated   int64
	Commands        int64
	Receives        int64
	TimedOut        int64 // receives answered with the w:TimedOut fault
	Faults          int64 // every fault, TimedOut included
	BytesIn         int64 // request bodies
	BytesOut        int64 // answer bodies
	LargestResponse int64 // largest answer body, in bytes
	Oversize        int64 // answers larger than the request's MaxEnvelopeSize; always 0 unless broken
}

// Server is a simulated WinRM service. It is an http.Handler for POST /wsman.
type Server struct {
	cfg    Config
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	shells   map[string]*shell
	perUser  map[string]int
	programs map[string]Program
	// What Start set up.
	addr, url string
	tlsConfig *tls.Config
	httpSrv   *http.Server
	listener  net.Listener

	authMu sync.Mutex
	conns  map[string]*connAuth // by the client's address: one TCP connection

	faultMu sync.Mutex
	faults  map[Op]*injection

	requests, unauthorized, shellsOpen, shellsCreated, commands atomic.Int64
	receives, timedOut, faultCount, bytesIn, bytesOut, largest  atomic.Int64
	oversize, ntlmChallenges, ntlmLogons, injected              atomic.Int64
}

// New returns a server with no programs registered; cmd.exe's built-ins
// work without any.
func New(cfg Config) *Server {
	if cfg.Hostname == "" {
		cfg.Hostname = "EX01"
	}
	if cfg.MaxShellsPerUser <= 0 {
		cfg.MaxShellsPerUser = DefaultMaxShellsPerUser
	}
	if cfg.MaxRequestSize <= 0 {
		cfg.MaxRequestSize = DefaultMaxRequestSize
	}
	if cfg.MaxTimeout <= 0 {
		cfg.MaxTimeout = DefaultMaxTimeout
	}
	if cfg.OutputBuffer <= 0 {
		cfg.OutputBuffer = defaultOutputBuffer
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.Domain == "" {
		cfg.Domain = "CONTOSO"
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		cfg: cfg, log: log.With("component", "sim-winrm"), ctx: ctx, cancel: cancel,
		shells: map[string]*shell{}, perUser: map[string]int{}, programs: map[string]Program{},
		conns: map[string]*connAuth{}, faults: map[Op]*injection{},
	}
}

// Handle registers a program under an executable name such as
// "powershell.exe"; cmd.exe finds it by base name with or without the
// extension, in any case, and under any directory.
func (s *Server) Handle(name string, p Program) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.programs[programKey(name)] = p
}

func (s *Server) program(key string) Program {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.programs[key]
}

// Hostname returns the server's computer name.
func (s *Server) Hostname() string { return s.cfg.Hostname }

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	return Stats{
		Requests: s.requests.Load(), Unauthorized: s.unauthorized.Load(), ShellsOpen: s.shellsOpen.Load(),
		ShellsCreated: s.shellsCreated.Load(), Commands: s.commands.Load(), Receives: s.receives.Load(),
		TimedOut: s.timedOut.Load(), Faults: s.faultCount.Load(), BytesIn: s.bytesIn.Load(),
		BytesOut: s.bytesOut.Load(), LargestResponse: s.largest.Load(), Oversize: s.oversize.Load(),
		NTLMChallenges: s.ntlmChallenges.Load(), NTLMLogons: s.ntlmLogons.Load(), Injected: s.injected.Load(),
	}
}

// Close stops serving (if Start started it), terminates every command,
// forgets every shell and waits for the programs to return.
func (s *Server) Close() {
	s.cancel()
	s.mu.Lock()
	shells := s.shells
	s.shells = map[string]*shell{}
	s.perUser = map[string]int{}
	s.mu.Unlock()
	for _, sh := range shells {
		s.terminateShell(sh)
	}
	s.shellsOpen.Store(0)
	s.shutdown()
	s.wg.Wait()
}

// ServeHTTP answers one WS-Management request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/wsman" && r.URL.Path != "/wsman/" {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	auth := s.authenticate(r)
	if !auth.ok {
		s.refuse(w, r, auth.negotiate)
		return
	}
	user := auth.user
	s.requests.Add(1)
	if ct := r.Header.Get("Content-Type"); !strings.Contains(strings.ToLower(ct), "application/soap+xml") {
		s.writeFault(w, "", faultInvalidHeader("Content-Type"))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(s.cfg.MaxRequestSize)+1))
	s.bytesIn.Add(int64(len(body)))
	if err != nil {
		s.writeFault(w, "", faultInvalidXML())
		return
	}
	if len(body) > s.cfg.MaxRequestSize {
		s.writeFault(w, "", faultEnvelopeTooLarge())
		return
	}
	req, err := parseRequest(body)
	if err != nil {
		s.log.Debug("request refused", "user", user, "error", err)
		s.writeFault(w, "", faultInvalidXML())
		return
	}
	id := req.Header.MessageID
	if req.Header.ResourceURI != resourceCmd {
		s.writeFault(w, id, faultActionNotSupported(req.Header.Action))
		return
	}
	maxEnv, err := req.maxEnvelope()
	if err != nil {
		s.writeFault(w, id, faultInvalidHeader("MaxEnvelopeSize"))
		return
	}
	inj, faulted := s.faultFor(opOf(req.Header.Action))
	if inj != nil {
		sleep(r.Context(), inj.Latency)
		if inj.Reset && opOf(req.Header.Action) == OpReceive {
			// The receive takes the output first; it dies with the connection.
			_, _ = s.receive(r.Context(), user, req, maxEnv)
		}
		if s.applyFault(w, r, id, inj) {
			return
		}
	}
	var (
		action, answer string
		f              *fault
	)
	switch strings.TrimSpace(req.Header.Action) {
	case actionCreate:
		action = nsTransfer + "/CreateResponse"
		answer, f = s.create(user, req)
	case actionCommand:
		action = nsShell + "/CommandResponse"
		answer, f = s.command(user, req)
	case actionSend:
		action = nsShell + "/SendResponse"
		answer, f = s.send(user, req)
	case actionReceive:
		action = nsShell + "/ReceiveResponse"
		answer, f = s.receive(r.Context(), user, req, maxEnv)
		if !faulted {
			if late := s.lateFault(OpReceive); late != nil {
				// The output this Receive took is lost with the
				// connection, or with the failing provider's answer.
				if late.Status != 0 {
					s.writeFault(w, id, faultInternal(late.Status))
				} else {
					dropConnection(w)
				}
				return
			}
		}
	case actionSignal:
		action = nsShell + "/SignalResponse"
		answer, f = s.signal(user, req)
	case actionDelete:
		action = nsTransfer + "/DeleteResponse"
		answer, f = s.delete(user, req)
	default:
		f = faultActionNotSupported(req.Header.Action)
	}
	if f != nil {
		s.writeFault(w, id, f)
		return
	}
	s.write(w, http.StatusOK, envelope(action, id, answer), maxEnv)
}

func (s *Server) write(w http.ResponseWriter, status int, body string, maxEnv int) {
	n := int64(len(body))
	s.bytesOut.Add(n)
	for {
		cur := s.largest.Load()
		if n <= cur || s.largest.CompareAndSwap(cur, n) {
			break
		}
	}
	if maxEnv > 0 && len(body) > maxEnv {
		s.oversize.Add(1)
	}
	w.Header().Set("Content-Type", "application/soap+xml;charset=UTF-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func (s *Server) writeFault(w http.ResponseWriter, relatesTo string, f *fault) {
	s.faultCount.Add(1)
	s.write(w, f.status, envelope(actionFault, relatesTo, f.body(s.cfg.Hostname)), 0)
}

// create opens a shell for the user, within the per-user quota, after
// closing shells that were idle too long.
func (s *Server) create(user string, req *request) (string, *fault) {
	s.mu.Lock()
	var idle []*shell
	for id, sh := range s.shells {
		if time.Since(sh.lastUsed()) > s.cfg.IdleTimeout {
			delete(s.shells, id)
			s.perUser[sh.owner]--
			s.shellsOpen.Add(-1)
			idle = append(idle, sh)
		}
	}
	if s.perUser[user] >= s.cfg.MaxShellsPerUser {
		s.mu.Unlock()
		return "", faultMaxShells(s.cfg.MaxShellsPerUser)
	}
	sh := &shell{id: newUUID(""), owner: user, created: time.Now(), commands: map[string]*command{}}
	sh.touch()
	s.shells[sh.id] = sh
	s.perUser[user]++
	s.mu.Unlock()
	for _, old := range idle {
		s.log.Debug("idle shell closed", "user", old.owner, "shell", old.id)
		s.terminateShell(old)
	}
	s.shellsOpen.Add(1)
	s.shellsCreated.Add(1)
	s.log.Debug("shell created", "user", user, "shell", sh.id)
	in, out := "stdin", "stdout stderr"
	if req.Body.Shell != nil {
		in, out = strings.TrimSpace(req.Body.Shell.InputStreams), strings.TrimSpace(req.Body.Shell.OutputStreams)
	}
	return `<x:ResourceCreated><a:Address>` + escape(req.Header.To) + `</a:Address><a:ReferenceParameters><w:ResourceURI>` +
		resourceCmd + `</w:ResourceURI><w:SelectorSet><w:Selector Name="ShellId">` + sh.id +
		`</w:Selector></w:SelectorSet></a:ReferenceParameters></x:ResourceCreated><rsp:Shell><rsp:ShellId>` + sh.id +
		`</rsp:ShellId><rsp:ResourceUri>` + resourceCmd + `</rsp:ResourceUri><rsp:Owner>` + escape(user) +
		`</rsp:Owner><rsp:ClientIP>127.0.0.1</rsp:ClientIP><rsp:IdleTimeOut>PT7200.000S</rsp:IdleTimeOut><rsp:InputStreams>` +
		escape(in) + `</rsp:InputStreams><rsp:OutputStreams>` + escape(out) +
		`</rsp:OutputStreams><rsp:ShellRunTime>P0DT0H0M0S</rsp:ShellRunTime><rsp:ShellInactivity>P0DT0H0M0S</rsp:ShellInactivity></rsp:Shell>`, nil
}

// shellOf finds the user's shell named in the request.
func (s *Server) shellOf(user string, req *request) (*shell, *fault) {
	id := req.shellID()
	s.mu.Lock()
	defer s.mu.Unlock()
	sh := s.shells[id]
	if sh == nil || sh.owner != user {
		return nil, faultShellNotFound(id)
	}
	sh.touch()
	return sh, nil
}

func (sh *shell) command(id string) *command {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.commands[strings.TrimSpace(id)]
}

// command starts a command line in a shell.
func (s *Server) command(user string, req *request) (string, *fault) {
	sh, f := s.shellOf(user, req)
	if f != nil {
		return "", f
	}
	if req.Body.CommandLine == nil {
		return "", faultInvalidXML()
	}
	line := req.Body.CommandLine.Command
	for _, a := range req.Body.CommandLine.Arguments {
		line += " " + a
	}
	ctx, cancel := context.WithCancel(s.ctx)
	c := newCommand(newUUID(""), s.cfg.OutputBuffer, cancel)
	sh.mu.Lock()
	sh.commands[c.id] = c
	sh.mu.Unlock()
	s.commands.Add(1)
	p := &Process{
		Host: s.cfg.Hostname, User: user, CommandLine: line,
		Stdin: stdinReader{c}, Stdout: streamWriter{c: c}, Stderr: streamWriter{c: c, stderr: true},
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		code := exitTerminated
		defer func() {
			if v := recover(); v != nil {
				s.log.Error("program failed", "shell", sh.id, "command", c.id, "panic", fmt.Sprint(v))
				code = 1
			}
			cancel()
			c.finish(code)
			s.log.Debug("command finished", "shell", sh.id, "command", c.id, "exit_code", code)
		}()
		code = s.runCommandLine(ctx, p)
	}()
	s.log.Debug("command started", "user", user, "shell", sh.id, "command", c.id, "length", len(line))
	return `<rsp:CommandResponse><rsp:CommandId>` + c.id + `</rsp:CommandId></rsp:CommandResponse>`, nil
}

// send appends stdin to a command.
func (s *Server) send(user string, req *request) (string, *fault) {
	sh, f := s.shellOf(user, req)
	if f != nil {
		return "", f
	}
	if req.Body.Send == nil {
		return "", faultInvalidXML()
	}
	for _, st := range req.Body.Send.Streams {
		if st.Name != "stdin" {
			return "", faultInvalidStdin(st.Name)
		}
		c := sh.command(st.CommandID)
		if c == nil {
			return "", faultCommandNotFound(st.CommandID)
		}
		data, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(st.Data), ""))
		if err != nil {
			return "", faultInvalidStdin("stdin")
		}
		c.addStdin(data, strings.EqualFold(st.End, "true"))
	}
	return `<rsp:SendResponse/>`, nil
}

// receive long-polls a command's output: it answers as soon as there is
// output or the command is done, and with the w:TimedOut fault when the
// request's OperationTimeout passes with neither.
func (s *Server) receive(ctx context.Context, user string, req *request, maxEnv int) (string, *fault) {
	s.receives.Add(1)
	sh, f := s.shellOf(user, req)
	if f != nil {
		return "", f
	}
	if req.Body.Receive == nil {
		return "", faultInvalidXML()
	}
	id := strings.TrimSpace(req.Body.Receive.DesiredStream.CommandID)
	c := sh.command(id)
	if c == nil {
		return "", faultCommandNotFound(id)
	}
	timeout, err := req.operationTimeout(s.cfg.MaxTimeout)
	if err != nil {
		return "", faultInvalidHeader("OperationTimeout")
	}
	timeout = min(timeout, s.cfg.MaxTimeout)
	out, ok := c.receive(ctx, timeout, receiveBudget(maxEnv, id))
	if !ok {
		s.timedOut.Add(1)
		return "", faultTimedOut()
	}
	return receiveBody(id, out), nil
}

// receiveBudget is how many output bytes fit in one answer: base64 grows
// them by 4/3, and the envelope, the two Stream elements and the command
// state take the rest.
func receiveBudget(maxEnv int, commandID string) int {
	overhead := len(envelope(nsShell+"/ReceiveResponse", "uuid:00000000-0000-0000-0000-000000000000",
		receiveBody(commandID, output{done: true, exitCode: -2147483648})))
	overhead += 2 * len(`<rsp:Stream Name="stderr" CommandId="`+commandID+`" End="true"></rsp:Stream>`)
	overhead += 256 // a longer RelatesTo than the placeholder
	return max(3, (maxEnv-overhead)/4*3)
}

// receiveBody renders a ReceiveResponse.
func receiveBody(id string, out output) string {
	var b strings.Builder
	b.Grow(base64.StdEncoding.EncodedLen(len(out.stdout)+len(out.stderr)) + 512)
	b.WriteString(`<rsp:ReceiveResponse>`)
	for _, st := range []struct {
		name string
		data []byte
	}{{"stdout", out.stdout}, {"stderr", out.stderr}} {
		if len(st.data) == 0 && !out.done {
			continue
		}
		b.WriteString(`<rsp:Stream Name="` + st.name + `" CommandId="` + id + `"`)
		if out.done {
			b.WriteString(` End="true"`)
		}
		b.WriteString(`>`)
		b.WriteString(base64.StdEncoding.EncodeToString(st.data))
		b.WriteString(`</rsp:Stream>`)
	}
	if out.done {
		fmt.Fprintf(&b, `<rsp:CommandState CommandId="%s" State="%s"><rsp:ExitCode>%d</rsp:ExitCode></rsp:CommandState>`, id, stateDone, out.exitCode)
	} else {
		fmt.Fprintf(&b, `<rsp:CommandState CommandId="%s" State="%s"/>`, id, stateRunning)
	}
	b.WriteString(`</rsp:ReceiveResponse>`)
	return b.String()
}

// signal terminates a command.
func (s *Server) signal(user string, req *request) (string, *fault) {
	sh, f := s.shellOf(user, req)
	if f != nil {
		return "", f
	}
	if req.Body.Signal == nil {
		return "", faultInvalidXML()
	}
	id := strings.TrimSpace(req.Body.Signal.CommandID)
	sh.mu.Lock()
	c := sh.commands[id]
	delete(sh.commands, id)
	sh.mu.Unlock()
	if c == nil {
		return "", faultCommandNotFound(id)
	}
	c.terminate()
	return `<rsp:SignalResponse/>`, nil
}

// delete closes a shell and terminates its commands.
func (s *Server) delete(user string, req *request) (string, *fault) {
	sh, f := s.shellOf(user, req)
	if f != nil {
		return "", f
	}
	s.mu.Lock()
	if _, ok := s.shells[sh.id]; ok {
		delete(s.shells, sh.id)
		s.perUser[user]--
		s.shellsOpen.Add(-1)
	}
	s.mu.Unlock()
	s.terminateShell(sh)
	s.log.Debug("shell deleted", "user", user, "shell", sh.id)
	return "", nil
}

func (s *Server) terminateShell(sh *shell) {
	sh.mu.Lock()
	cmds := sh.commands
	sh.commands = map[string]*command{}
	sh.mu.Unlock()
	for _, c := range cmds {
		c.terminate()
	}
}

// opOf names the operation of an action URI.
func opOf(action string) Op {
	switch strings.TrimSpace(action) {
	case actionCreate:
		return OpCreate
	case actionCommand:
		return OpCommand
	case actionSend:
		return OpSend
	case actionReceive:
		return OpReceive
	case actionSignal:
		return OpSignal
	case actionDelete:
		return OpDelete
	}
	return Op(action)
}
