package winrm_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/masterzen/winrm"

	simwinrm "easgate/engine/sim/winrm"
)

const (
	testUser = `CONTOSO\svc-easgate`
	testPass = "S3cret!pw"
)

// start runs a simulated server on 127.0.0.1 with a few test programs and
// returns it with a client that speaks to it through the unmodified
// masterzen/winrm library.
func start(t *testing.T, cfg simwinrm.Config, timeout string) (*simwinrm.Server, *winrm.Client) {
	t.Helper()
	srv, client, _ := startHTTP(t, cfg, timeout)
	return srv, client
}

// post sends a raw envelope as the test user and returns the answer.
func post(t *testing.T, hs *httptest.Server, envelope string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, hs.URL+"/wsman", strings.NewReader(envelope))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(testUser, testPass)
	req.Header.Set("Content-Type", "application/soap+xml;charset=UTF-8")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func startHTTP(t *testing.T, cfg simwinrm.Config, timeout string) (*simwinrm.Server, *winrm.Client, *httptest.Server) {
	t.Helper()
	if cfg.Users == nil {
		cfg.Users = map[string]string{testUser: testPass}
	}
	srv := simwinrm.New(cfg)
	// cat.exe copies stdin to stdout.
	srv.Handle("cat.exe", simwinrm.ProgramFunc(func(ctx context.Context, p *simwinrm.Process) int {
		if _, err := io.Copy(p.Stdout, p.Stdin); err != nil {
			return 1
		}
		return 0
	}))
	// blob.exe writes N bytes of a repeating pattern.
	srv.Handle("blob", simwinrm.ProgramFunc(func(ctx context.Context, p *simwinrm.Process) int {
		n, _ := strconv.Atoi(p.Args[1])
		for i := 0; i < n; i += 1000 {
			chunk := bytes.Repeat([]byte{byte('a' + i/1000%26)}, min(1000, n-i))
			if _, err := p.Stdout.Write(chunk); err != nil {
				return 1
			}
		}
		return 0
	}))
	// sleep.exe waits, then prints done, or ends when terminated.
	srv.Handle(`C:\Tools\sleep.exe`, simwinrm.ProgramFunc(func(ctx context.Context, p *simwinrm.Process) int {
		d, _ := time.ParseDuration(p.Args[1])
		select {
		case <-time.After(d):
			io.WriteString(p.Stdout, "done\r\n")
			return 0
		case <-ctx.Done():
			return 1
		}
	}))
	// fail.exe writes to stderr and exits 3.
	srv.Handle("fail", simwinrm.ProgramFunc(func(ctx context.Context, p *simwinrm.Process) int {
		io.WriteString(p.Stderr, "it broke\r\n")
		return 3
	}))
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		hs.Close()
		srv.Close()
	})
	host, port := hostPort(t, hs.URL)
	client, err := winrm.NewClientWithParameters(winrm.NewEndpoint(host, port, false, false, nil, nil, nil, 30*time.Second),
		testUser, testPass, winrm.NewParameters(timeout, "en-US", 153600))
	if err != nil {
		t.Fatal(err)
	}
	return srv, client, hs
}

func hostPort(t *testing.T, rawURL string) (string, int) {
	t.Helper()
	host, port, err := net.SplitHostPort(strings.TrimPrefix(rawURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	return host, p
}

func TestCommandLines(t *testing.T) {
	_, client := start(t, simwinrm.Config{Hostname: "EX01"}, "PT20S")
	tests := []struct {
		name           string
		command        string
		stdout, stderr string
		exit           int
	}{
		{name: "hostname", command: "hostname", stdout: "EX01\r\n"},
		{name: "hostname.exe in any case", command: "HOSTNAME.EXE", stdout: "EX01\r\n"},
		{name: "echo", command: "echo hello  world", stdout: "hello  world\r\n"},
		{name: "echo alone", command: "echo", stdout: "ECHO is on.\r\n"},
		{name: "unknown program", command: "nosuch.exe /x",
			stderr: "'nosuch.exe' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n", exit: 1},
		{name: "program by base name", command: "sleep 1ms", stdout: "done\r\n"},
		{name: "program under a path", command: `"C:\Tools\sleep.exe" 1ms`, stdout: "done\r\n"},
		{name: "stderr and exit code", command: "fail", stderr: "it broke\r\n", exit: 3},
		{name: "line of 8191 characters runs", command: "echo " + strings.Repeat("x", 8186), stdout: strings.Repeat("x", 8186) + "\r\n"},
		{name: "line of 8192 characters is too long", command: "echo " + strings.Repeat("x", 8187),
			stderr: "The command line is too long.\r\n", exit: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, exit, err := client.RunWithString(tt.command, "")
			if err != nil {
				t.Fatal(err)
			}
			if stdout != tt.stdout || stderr != tt.stderr || exit != tt.exit {
				t.Errorf("got stdout %q stderr %q exit %d; want %q %q %d", stdout, stderr, exit, tt.stdout, tt.stderr, tt.exit)
			}
		})
	}
}

func TestStdinReachesTheProgram(t *testing.T) {
	_, client := start(t, simwinrm.Config{}, "PT20S")
	in := strings.Repeat("line of stdin\n", 20000) // 280 kB: several Send requests
	var out, errOut bytes.Buffer
	exit, err := client.RunWithInput("cat", &out, &errOut, strings.NewReader(in))
	if err != nil || exit != 0 {
		t.Fatalf("exit %d, err %v, stderr %q", exit, err, errOut.String())
	}
	if out.String() != in {
		t.Errorf("stdout has %d bytes, want the %d sent", out.Len(), len(in))
	}
}

func TestOutputIsChunkedUnderMaxEnvelopeSize(t *testing.T) {
	srv, client := start(t, simwinrm.Config{}, "PT20S")
	const n = 2_000_000
	var out, errOut bytes.Buffer
	exit, err := client.Run("blob "+strconv.Itoa(n), &out, &errOut)
	if err != nil || exit != 0 {
		t.Fatalf("exit %d, err %v", exit, err)
	}
	if out.Len() != n {
		t.Fatalf("got %d bytes, want %d", out.Len(), n)
	}
	st := srv.Stats()
	if st.Oversize != 0 || st.LargestResponse > 153600 {
		t.Errorf("largest answer %d bytes (%d over MaxEnvelopeSize), want all ≤ 153600", st.LargestResponse, st.Oversize)
	}
	if st.LargestResponse < 140000 {
		t.Errorf("largest answer %d bytes: output should fill the envelopes", st.LargestResponse)
	}
}

func TestReceiveLongPollsUntilOperationTimeout(t *testing.T) {
	srv, client := start(t, simwinrm.Config{}, "PT1S")
	start := time.Now()
	stdout, _, exit, err := client.RunWithString("sleep 2500ms", "")
	elapsed := time.Since(start)
	if err != nil || exit != 0 || stdout != "done\r\n" {
		t.Fatalf("stdout %q exit %d err %v", stdout, exit, err)
	}
	st := srv.Stats()
	if st.TimedOut != 2 {
		t.Errorf("TimedOut faults = %d, want 2 (the client waited 1 s twice, then got the output)", st.TimedOut)
	}
	// Two timed out; then the output, and the end of the command either
	// with it or in one more answer. More would be receives answered empty.
	if st.Receives < 3 || st.Receives > 4 {
		t.Errorf("receives = %d, want 3 or 4: a receive must wait, not answer empty", st.Receives)
	}
	if elapsed < 2400*time.Millisecond {
		t.Errorf("took %v, want about 2.5 s", elapsed)
	}
}

func TestShellQuotaPerUser(t *testing.T) {
	srv, client, hs := startHTTP(t, simwinrm.Config{MaxShellsPerUser: 3}, "PT20S")
	var shells []*winrm.Shell
	for range 3 {
		sh, err := client.CreateShell()
		if err != nil {
			t.Fatal(err)
		}
		shells = append(shells, sh)
	}
	// masterzen/winrm's own transport returns a non-200 answer's body as if
	// it were a success (its deferred error assignment targets unnamed
	// results), so post the library's Create message directly.
	status, body := post(t, hs, winrm.NewOpenShellRequest(hs.URL+"/wsman", nil).String())
	if status != 500 || !strings.Contains(body, "w:QuotaLimit") ||
		!strings.Contains(body, "This user is allowed a maximum number of 3 concurrent shells") {
		t.Fatalf("fourth shell: status %d body %.400s; want the QuotaLimit fault", status, body)
	}
	if err := shells[0].Close(); err != nil {
		t.Fatal(err)
	}
	sh, err := client.CreateShell()
	if err != nil {
		t.Fatalf("after closing one: %v", err)
	}
	shells = append(shells[1:], sh)
	for _, sh := range shells {
		if err := sh.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if st := srv.Stats(); st.ShellsOpen != 0 || st.ShellsCreated != 4 {
		t.Errorf("stats %+v: want 0 open, 4 created", st)
	}
}

func TestSignalEndsARunningCommand(t *testing.T) {
	_, client := start(t, simwinrm.Config{}, "PT20S")
	sh, err := client.CreateShell()
	if err != nil {
		t.Fatal(err)
	}
	defer sh.Close()
	cmd, err := sh.Execute("sleep", "1h")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	if err := cmd.Close(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the pending receive took %v to end after the signal", d)
	}
}

func TestBadCredentials(t *testing.T) {
	srv := simwinrm.New(simwinrm.Config{Users: map[string]string{testUser: testPass}})
	hs := httptest.NewServer(srv)
	t.Cleanup(func() { hs.Close(); srv.Close() })
	host, port := hostPort(t, hs.URL)
	client, err := winrm.NewClient(winrm.NewEndpoint(host, port, false, false, nil, nil, nil, 0), testUser, "wrong")
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.CreateShell()
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("err = %v, want a 401", err)
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Errorf("error %q repeats the password", err)
	}
	if srv.Stats().Unauthorized != 1 {
		t.Errorf("unauthorized = %d, want 1", srv.Stats().Unauthorized)
	}
}

func TestConcurrentCommands(t *testing.T) {
	_, client := start(t, simwinrm.Config{}, "PT20S")
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, _, _, err := client.RunWithString("echo "+strconv.Itoa(i), "")
			if err == nil && out != strconv.Itoa(i)+"\r\n" {
				err = io.ErrUnexpectedEOF
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func TestGarbageRequests(t *testing.T) {
	srv := simwinrm.New(simwinrm.Config{Users: map[string]string{testUser: testPass}, MaxRequestSize: 4096})
	hs := httptest.NewServer(srv)
	t.Cleanup(func() { hs.Close(); srv.Close() })
	tests := []struct {
		name, method, path, ctype, body string
		status                          int
		contains                        string
	}{
		{name: "not XML", method: "POST", path: "/wsman", ctype: "application/soap+xml", body: "{{{", status: 400, contains: "w:SchemaValidationError"},
		{name: "wrong root", method: "POST", path: "/wsman", ctype: "application/soap+xml", body: "<a/>", status: 400, contains: "XML is invalid"},
		{name: "too large", method: "POST", path: "/wsman", ctype: "application/soap+xml", body: strings.Repeat("x", 5000), status: 400, contains: "w:EncodingLimit"},
		{name: "wrong content type", method: "POST", path: "/wsman", ctype: "text/plain", body: "<a/>", status: 400, contains: "Content-Type"},
		{name: "unknown action", method: "POST", path: "/wsman", ctype: "application/soap+xml", status: 500, contains: "a:ActionNotSupported",
			body: `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"><s:Header><a:Action>http://example/Frob</a:Action><w:ResourceURI>http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd</w:ResourceURI></s:Header><s:Body/></s:Envelope>`},
		{name: "unknown shell", method: "POST", path: "/wsman", ctype: "application/soap+xml", status: 500, contains: "w:InvalidSelectors",
			body: `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"><s:Header><a:Action>http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Command</a:Action><w:ResourceURI>http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd</w:ResourceURI><w:SelectorSet><w:Selector Name="ShellId">nope</w:Selector></w:SelectorSet></s:Header><s:Body/></s:Envelope>`},
		{name: "wrong path", method: "POST", path: "/other", ctype: "application/soap+xml", body: "", status: 404},
		{name: "GET", method: "GET", path: "/wsman", status: 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, hs.URL+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			req.SetBasicAuth(testUser, testPass)
			req.Header.Set("Content-Type", tt.ctype)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status || !strings.Contains(string(body), tt.contains) {
				t.Errorf("status %d body %.300s; want %d containing %q", resp.StatusCode, body, tt.status, tt.contains)
			}
			if tt.contains != "" && !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/soap+xml") {
				t.Errorf("Content-Type %q, want application/soap+xml", resp.Header.Get("Content-Type"))
			}
		})
	}
}

func TestIdleShellsAreClosed(t *testing.T) {
	srv, client := start(t, simwinrm.Config{MaxShellsPerUser: 2, IdleTimeout: 50 * time.Millisecond}, "PT20S")
	for range 2 {
		if _, err := client.CreateShell(); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond)
	sh, err := client.CreateShell()
	if err != nil {
		t.Fatal(err)
	}
	if out, _, _, err := client.RunWithString("echo still here", ""); err != nil || out != "still here\r\n" {
		t.Fatalf("after reaping: %q %v", out, err)
	}
	_ = sh.Close()
	if st := srv.Stats(); st.ShellsOpen != 0 || st.ShellsCreated != 4 {
		t.Errorf("stats %+v: want the two idle shells closed", st)
	}
}
