package winrm_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/masterzen/winrm"

	"easgate/engine/sim/simtls"
	simwinrm "easgate/engine/sim/winrm"
)

func port(t *testing.T, url string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(url, "https://"), "http://"), "/wsman"))
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

// started runs a simulator with Start and returns a library client for it.
func started(t *testing.T, tlsConfig *tls.Config, caPEM []byte) (*simwinrm.Server, *winrm.Client, string) {
	t.Helper()
	srv := simwinrm.New(simwinrm.Config{Users: map[string]string{testUser: testPass}})
	url, err := srv.Start("127.0.0.1:0", tlsConfig)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	client, err := winrm.NewClientWithParameters(winrm.NewEndpoint("127.0.0.1", port(t, url), tlsConfig != nil, false, caPEM, nil, nil, 5*time.Second),
		testUser, testPass, winrm.NewParameters("PT20S", "en-US", 153600))
	if err != nil {
		t.Fatal(err)
	}
	return srv, client, url
}

func TestStartServesTLS(t *testing.T) {
	ca, err := simtls.New()
	if err != nil {
		t.Fatal(err)
	}
	_, client, url := started(t, ca.ServerTLS(), ca.CertPEM())
	if !strings.HasPrefix(url, "https://127.0.0.1:") || !strings.HasSuffix(url, "/wsman") {
		t.Errorf("url %q", url)
	}
	stdout, _, code, err := client.RunWithString("hostname", "")
	if err != nil || code != 0 || stdout != "EX01\r\n" {
		t.Fatalf("hostname over TLS: %q %d %v", stdout, code, err)
	}
}

func TestSetDownRefusesConnectionsUntilUp(t *testing.T) {
	srv, client, _ := started(t, nil, nil)
	if _, _, _, err := client.RunWithString("hostname", ""); err != nil {
		t.Fatal(err)
	}
	if err := srv.SetDown(true); err != nil {
		t.Fatal(err)
	}
	if _, err := net.DialTimeout("tcp", srv.Addr(), time.Second); err == nil {
		t.Fatal("a server that is down accepted a connection")
	}
	// The first request may find its kept-alive connection closed (EOF);
	// a new connection is refused.
	for i := range 2 {
		_, _, _, err := client.RunWithString("hostname", "")
		if err == nil || (i == 1 && !strings.Contains(err.Error(), "refused")) {
			t.Fatalf("request %d: err = %v, want connection refused", i+1, err)
		}
	}
	if err := srv.SetDown(false); err != nil {
		t.Fatal(err)
	}
	if out, _, _, err := client.RunWithString("hostname", ""); err != nil || out != "EX01\r\n" {
		t.Fatalf("after coming back: %q %v", out, err)
	}
}

func TestInjectedFaults(t *testing.T) {
	tests := []struct {
		name   string
		op     simwinrm.Op
		fault  simwinrm.Fault
		status int
		body   string
	}{
		{name: "500 on create", op: simwinrm.OpCreate, fault: simwinrm.Fault{Status: 500}, status: 500, body: "w:InternalError"},
		{name: "401 on any", op: simwinrm.OpAny, fault: simwinrm.Fault{Unauthorized: true}, status: 401},
		{name: "after one request", op: simwinrm.OpCreate, fault: simwinrm.Fault{Status: 503, After: 1}, status: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _, url := started(t, nil, nil)
			srv.SetFault(tt.op, tt.fault)
			req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(winrm.NewOpenShellRequest(url, nil).String()))
			if err != nil {
				t.Fatal(err)
			}
			req.SetBasicAuth(testUser, testPass)
			req.Header.Set("Content-Type", "application/soap+xml;charset=UTF-8")
			status, body := do(t, req)
			if status != tt.status || !strings.Contains(body, tt.body) {
				t.Errorf("status %d body %.200s; want %d with %q", status, body, tt.status, tt.body)
			}
			srv.SetFault(tt.op, simwinrm.Fault{})
			if status, _ := do(t, req); status != http.StatusOK {
				t.Errorf("after clearing the fault: status %d", status)
			}
		})
	}
}

func do(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	r := req.Clone(req.Context())
	r.Body, _ = req.GetBody()
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestResetMidReceiveLosesTheOutputAndTheConnection(t *testing.T) {
	srv, client, _ := started(t, nil, nil)
	srv.Handle("blob", blob)
	srv.SetFault(simwinrm.OpReceive, simwinrm.Fault{Reset: true, After: 1, Times: 1})
	_, _, _, err := client.RunWithString("blob 500000", "")
	if err == nil {
		t.Fatal("a reset mid-receive went unnoticed")
	}
	if st := srv.Stats(); st.Injected != 1 {
		t.Errorf("injected %d faults, want 1", st.Injected)
	}
	if out, _, _, err := client.RunWithString("echo next", ""); err != nil || out != "next\r\n" {
		t.Errorf("the next command: %q %v", out, err)
	}
}

// TestFaultSetWhileAReceiveWaitsHitsIt arms a fault while the client's
// Receive long-polls a command that has not written yet: a connection that
// breaks, or a provider that fails, fails the Receive that waits on it, as a
// real one does, not only requests sent after the fault was set.
func TestFaultSetWhileAReceiveWaitsHitsIt(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fault  simwinrm.Fault
		errors bool // whether the library reports it (it takes a non-200 answer's body as output)
	}{
		{"reset", simwinrm.Fault{Reset: true, Times: 1}, true},
		{"HTTP 500", simwinrm.Fault{Status: 500, Times: 1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, client, _ := started(t, nil, nil)
			release := make(chan struct{})
			srv.Handle("wait", simwinrm.ProgramFunc(func(ctx context.Context, p *simwinrm.Process) int {
				select {
				case <-release:
				case <-ctx.Done():
					return 1
				}
				_, _ = io.WriteString(p.Stdout, "done\r\n")
				return 0
			}))
			type result struct {
				out string
				err error
			}
			done := make(chan result, 1)
			go func() {
				out, _, _, err := client.RunWithString("wait", "")
				done <- result{out, err}
			}()
			deadline := time.Now().Add(5 * time.Second)
			for srv.Stats().Receives == 0 {
				if time.Now().After(deadline) {
					t.Fatal("the client never sent a Receive")
				}
				time.Sleep(time.Millisecond)
			}
			time.Sleep(20 * time.Millisecond) // the Receive is parked in its long poll
			srv.SetFault(simwinrm.OpReceive, tc.fault)
			close(release)
			select {
			case r := <-done:
				if strings.Contains(r.out, "done") {
					t.Errorf("the output outlived the fault: %q", r.out)
				}
				if tc.errors && r.err == nil {
					t.Error("a fault set while the Receive waited went unnoticed")
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the command never returned")
			}
			if st := srv.Stats(); st.Injected != 1 {
				t.Errorf("injected %d faults, want 1", st.Injected)
			}
			if out, _, _, err := client.RunWithString("echo next", ""); err != nil || out != "next\r\n" {
				t.Errorf("the next command: %q %v", out, err)
			}
		})
	}
}

// blob writes N bytes of a repeating pattern.
var blob = simwinrm.ProgramFunc(func(ctx context.Context, p *simwinrm.Process) int {
	n, _ := strconv.Atoi(p.Args[1])
	for i := 0; i < n; i += 1000 {
		chunk := bytes.Repeat([]byte{byte('a' + i/1000%26)}, min(1000, n-i))
		if _, err := p.Stdout.Write(chunk); err != nil {
			return 1
		}
	}
	return 0
})
