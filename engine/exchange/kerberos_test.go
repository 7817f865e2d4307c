package exchange_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/keytab"

	"easgate/engine"
	"easgate/engine/exchange"
)

// TestKerberosConfigPath builds the Kerberos transport from a krb5.conf and
// a keytab. There is no KDC here: the KDC the krb5.conf names refuses the
// connection, so no ticket is had, the call fails as a refusal of the
// credentials, and nothing reaches the WinRM server.
func TestKerberosConfigPath(t *testing.T) {
	dir := t.TempDir()
	krb5 := filepath.Join(dir, "krb5.conf")
	conf := "[libdefaults]\n  default_realm = CONTOSO.LOCAL\n  udp_preference_limit = 1\n  dns_lookup_kdc = false\n" +
		"[realms]\n  CONTOSO.LOCAL = {\n    kdc = " + freeAddr(t) + "\n  }\n"
	if err := os.WriteFile(krb5, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	kt := keytab.New()
	if err := kt.AddEntry("svc-easgate", "CONTOSO.LOCAL", "keytab-secret", time.Now(), 1, etypeID.AES256_CTS_HMAC_SHA1_96); err != nil {
		t.Fatal(err)
	}
	ktb, err := kt.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	ktPath := filepath.Join(dir, "svc.keytab")
	if err := os.WriteFile(ktPath, ktb, 0o600); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, generated(2), func(c *envConfig) {
		c.client.Auth, c.client.Krb5Conf, c.client.Keytab = exchange.AuthKerberos, krb5, ktPath
		c.client.Username, c.client.Password, c.client.Session = `CONTOSO\svc-easgate`, "", exchange.SessionSnapin
	})
	_, err = e.client.Inventory(context.Background(), engine.InventoryQuery{})
	if !errors.Is(err, exchange.ErrUnauthorized) || !strings.Contains(err.Error(), "kerberos ticket for HTTP/127.0.0.1") {
		t.Fatalf("err = %v, want a refusal naming the Kerberos ticket", err)
	}
	if st := e.winrm.Stats(); st.Requests != 0 || st.Unauthorized != 0 {
		t.Errorf("the server saw requests: %+v", st)
	}
	for _, bad := range []exchange.Config{
		{Auth: exchange.AuthKerberos, Krb5Conf: filepath.Join(dir, "missing.conf"), Keytab: ktPath},
		{Auth: exchange.AuthKerberos, Krb5Conf: krb5, Keytab: filepath.Join(dir, "missing.keytab")},
	} {
		bad.Servers, bad.Username, bad.Session, bad.HTTPS = []string{"ex01"}, "svc-easgate", exchange.SessionSnapin, true
		if _, err := exchange.New(bad, nil); !errors.Is(err, exchange.ErrConfig) {
			t.Errorf("config %+v: err = %v, want ErrConfig", bad, err)
		}
	}
}

func TestPlainHTTPIsLoggedAsAWarning(t *testing.T) {
	var buf bytes.Buffer
	c, err := exchange.New(exchange.Config{Servers: []string{"ex01"}, Auth: exchange.AuthNTLM, Username: user, Password: password,
		AllowInsecureTransport: true}, slog.New(slog.NewTextHandler(&buf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !strings.Contains(buf.String(), "level=WARN") || !strings.Contains(buf.String(), "plain HTTP") || strings.Contains(buf.String(), password) {
		t.Errorf("log %q: want a warning about plain HTTP, without the password", buf.String())
	}
}
