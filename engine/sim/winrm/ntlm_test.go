package winrm_test

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/Azure/go-ntlmssp"
	"github.com/masterzen/winrm"

	simwinrm "easgate/engine/sim/winrm"
)

// ntlmServer starts a simulator that accepts only NTLM, as Windows' WinRM
// service does by default.
func ntlmServer(t *testing.T) (*simwinrm.Server, string) {
	t.Helper()
	srv := simwinrm.New(simwinrm.Config{Users: map[string]string{testUser: testPass}, DisableBasic: true})
	url, err := srv.Start("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv, url
}

// conn is one TCP connection: a transport that opens at most one.
func conn(t *testing.T) *http.Transport {
	tr := &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

// leg sends the Create-shell envelope over tr with an Authorization header
// (none when authz is empty) and returns the status and WWW-Authenticate.
func leg(t *testing.T, tr *http.Transport, url, authz string) (int, []string) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, url, strings.NewReader(winrm.NewOpenShellRequest(url, nil).String()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/soap+xml;charset=UTF-8")
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Values("WWW-Authenticate")
}

func negotiate(t *testing.T) string {
	t.Helper()
	msg, err := ntlmssp.NewNegotiateMessage("CONTOSO", "")
	if err != nil {
		t.Fatal(err)
	}
	return "Negotiate " + base64.StdEncoding.EncodeToString(msg)
}

// authenticate answers the challenge in a 401's WWW-Authenticate.
func authenticate(t *testing.T, header []string, user, password string) string {
	t.Helper()
	if len(header) != 1 || !strings.HasPrefix(header[0], "Negotiate ") {
		t.Fatalf("WWW-Authenticate %q: want one NTLM challenge", header)
	}
	challenge, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(header[0], "Negotiate "))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := ntlmssp.ProcessChallenge(challenge, user, password)
	if err != nil {
		t.Fatal(err)
	}
	return "Negotiate " + base64.StdEncoding.EncodeToString(msg)
}

func TestNTLMHandshakeIsBoundToTheConnection(t *testing.T) {
	tests := []struct {
		name      string
		password  string
		splitLegs bool // the AUTHENTICATE goes over another connection than the NEGOTIATE
		want      int
	}{
		{name: "right password, one connection", password: testPass, want: http.StatusOK},
		{name: "wrong password", password: "S3cret!pW", want: http.StatusUnauthorized},
		{name: "legs on two connections", password: testPass, splitLegs: true, want: http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, url := ntlmServer(t)
			a, b := conn(t), conn(t)
			status, challenge := leg(t, a, url, negotiate(t))
			if status != http.StatusUnauthorized {
				t.Fatalf("negotiate: status %d, want the 401 that carries the challenge", status)
			}
			second := a
			if tt.splitLegs {
				second = b
			}
			status, _ = leg(t, second, url, authenticate(t, challenge, "svc-easgate", tt.password))
			if status != tt.want {
				t.Fatalf("authenticate: status %d, want %d", status, tt.want)
			}
			logons := int64(0)
			if tt.want == http.StatusOK {
				logons = 1
				// The connection stays authenticated; another one is not.
				if status, _ := leg(t, a, url, ""); status != http.StatusOK {
					t.Errorf("next request on the authenticated connection: status %d", status)
				}
				if status, _ := leg(t, b, url, ""); status != http.StatusUnauthorized {
					t.Errorf("request on a fresh connection without credentials: status %d", status)
				}
			}
			st := srv.Stats()
			if st.NTLMLogons != logons || st.NTLMChallenges != 1 {
				t.Errorf("stats %+v: want %d logons from 1 challenge", st, logons)
			}
		})
	}
}

func TestBasicCanBeDisabled(t *testing.T) {
	srv, url := ntlmServer(t)
	client, err := winrm.NewClientWithParameters(winrm.NewEndpoint("127.0.0.1", port(t, url), false, false, nil, nil, nil, 0),
		testUser, testPass, winrm.NewParameters("PT20S", "en-US", 153600))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.CreateShell(); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("Basic against a Negotiate-only server: err = %v, want 401", err)
	}
	// masterzen/winrm's own NTLM transport gets in.
	params := winrm.NewParameters("PT20S", "en-US", 153600)
	params.TransportDecorator = func() winrm.Transporter { return &winrm.ClientNTLM{} }
	client, err = winrm.NewClientWithParameters(winrm.NewEndpoint("127.0.0.1", port(t, url), false, false, nil, nil, nil, 0),
		testUser, testPass, params)
	if err != nil {
		t.Fatal(err)
	}
	sh, err := client.CreateShell()
	if err != nil {
		t.Fatalf("NTLM: %v", err)
	}
	_ = sh.Close()
	if st := srv.Stats(); st.NTLMLogons == 0 || st.ShellsCreated != 1 {
		t.Errorf("stats %+v", st)
	}
}
