package exchange_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"easgate/engine"
)

// TestOutputKeepsItsOrderAcrossAnswersLeftToTheLibrary: the transport
// lifts the streams out of the Receive answers it can read exactly, and
// from the first one it cannot, leaves that command's answers to the WinRM
// library. With every other answer of an inventory made one it cannot (a
// comment in the body), each of the inventory's commands has output from
// both paths, and the output still arrives whole and in order.
func TestOutputKeepsItsOrderAcrossAnswersLeftToTheLibrary(t *testing.T) {
	o := generated(300)
	var commented, plain atomic.Int64
	e := newEnv(t, o, func(c *envConfig) {
		c.client.EnvelopeSize = 8192 // many answers per command
		c.front = func(t testing.TB, addr string) string {
			return commentEveryOtherReceive(t, addr, &commented, &plain)
		}
	})
	// Output lost between the two paths would leave the command waiting
	// for the rest of it; the deadline turns that into a failure.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	inv, err := e.client.Inventory(ctx, engine.InventoryQuery{})
	if err != nil {
		t.Fatal(err)
	}
	checkInventory(t, inv, o, time.Time{})
	if commented.Load() < 10 || plain.Load() < 10 {
		t.Errorf("%d answers commented and %d not: want many of both", commented.Load(), plain.Load())
	}
}

// commentEveryOtherReceive relays to addr, adding a comment to every other
// Receive answer with output, and returns the relay's address.
func commentEveryOtherReceive(t testing.TB, addr string, commented, plain *atomic.Int64) string {
	target := &url.URL{Scheme: "http", Host: addr}
	var n atomic.Int64
	relay := httptest.NewServer(&httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(target) },
		ModifyResponse: func(resp *http.Response) error {
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				return err
			}
			_ = resp.Body.Close()
			if bytes.Contains(body, []byte("ReceiveResponse>")) && bytes.Contains(body, []byte(`Name="stdout"`)) {
				if n.Add(1)%2 == 0 {
					body = bytes.Replace(body, []byte("<s:Body>"), []byte("<s:Body><!-- relayed -->"), 1)
					commented.Add(1)
				} else {
					plain.Add(1)
				}
			}
			resp.Body = io.NopCloser(bytes.NewReader(body))
			resp.ContentLength = int64(len(body))
			resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
			return nil
		},
	})
	t.Cleanup(relay.Close)
	return relay.Listener.Addr().String()
}
