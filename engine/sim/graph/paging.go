package graph

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// cursor is where a page starts: decoded from the opaque $skiptoken of a
// @odata.nextLink. It names the next item's position and ID so that a list
// that changed between pages resumes at the right item.
type cursor struct {
	page   int // 1-based
	index  int
	nextID string
}

func (c cursor) encode() string {
	return base64.RawURLEncoding.EncodeToString([]byte("v1|" + strconv.Itoa(c.page) + "|" + strconv.Itoa(c.index) + "|" + c.nextID))
}

func decodeCursor(tok string) (cursor, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return cursor{}, false
	}
	parts := strings.SplitN(string(raw), "|", 4)
	if len(parts) != 4 || parts[0] != "v1" {
		return cursor{}, false
	}
	page, err1 := strconv.Atoi(parts[1])
	index, err2 := strconv.Atoi(parts[2])
	if err1 != nil || err2 != nil || page < 2 || index < 0 {
		return cursor{}, false
	}
	return cursor{page: page, index: index, nextID: parts[3]}, true
}

// start resolves the cursor against the list as it is now: the item it
// names if it is still there, else the same position.
func (c cursor) start(n int, idAt func(int) string) int {
	if c.page <= 1 {
		return 0
	}
	if c.index < n && idAt(c.index) == c.nextID {
		return c.index
	}
	for i := range n {
		if idAt(i) == c.nextID {
			return i
		}
	}
	return min(c.index, n)
}

// pageOf decodes the request's $skiptoken, answering 400 for a bad one.
func (s *Server) pageOf(w http.ResponseWriter, r *http.Request, c *reqCtx) (cursor, bool) {
	tok := r.URL.Query().Get("$skiptoken")
	if tok == "" {
		return cursor{page: 1}, true
	}
	cur, ok := decodeCursor(tok)
	if !ok {
		s.graphError(w, r, c, http.StatusBadRequest, "BadRequest", "The $skiptoken is not valid.")
		return cursor{}, false
	}
	return cur, true
}

// nextLink builds the @odata.nextLink of a page: the same request, from the
// host the client used, with the query options kept and a new $skiptoken.
func (s *Server) nextLink(r *http.Request, next cursor) string {
	q := r.URL.Query()
	var b strings.Builder
	s.mu.Lock()
	base := s.linkBase
	s.mu.Unlock()
	if base != "" {
		b.WriteString(base)
	} else {
		b.WriteString(baseURL(r))
	}
	b.WriteString(r.URL.EscapedPath())
	sep := byte('?')
	for _, k := range []string{"$select", "$filter", "$top"} {
		if v := q.Get(k); v != "" {
			b.WriteByte(sep)
			sep = '&'
			b.WriteString(k)
			b.WriteByte('=')
			b.WriteString(escapeQuery(v))
		}
	}
	b.WriteByte(sep)
	b.WriteString("$skiptoken=")
	b.WriteString(next.encode())
	link := b.String()
	s.mu.Lock()
	if len(s.links) >= maxRememberedLinks {
		clear(s.links)
	}
	s.links[link] = struct{}{}
	s.mu.Unlock()
	return link
}

// maxRememberedLinks bounds the nextLinks remembered to check that clients
// follow them verbatim.
const maxRememberedLinks = 100_000

// checkLink counts a paged request whose URL is not, byte for byte, a
// nextLink the simulator handed out (Stats.AlteredLinks): Graph's
// $skiptoken links are opaque, and a client must not rebuild them.
func (s *Server) checkLink(r *http.Request) {
	if r.URL.Query().Get("$skiptoken") == "" {
		return
	}
	got := baseURL(r) + r.URL.RequestURI()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.links[got]; !ok {
		s.stats.AlteredLinks++
	}
}

// escapeQuery escapes a query value the way Graph's links do: spaces as
// %20, not '+'.
func escapeQuery(v string) string {
	return strings.ReplaceAll(url.QueryEscape(v), "+", "%20")
}

// parseSelect splits $select into known property names. It returns the
// first unknown name when there is one.
func parseSelect(v string, known func(string) bool) (names []string, unknown string) {
	if strings.TrimSpace(v) == "" {
		return nil, ""
	}
	for _, n := range strings.Split(v, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if !known(n) {
			return nil, n
		}
		names = append(names, n)
	}
	return names, ""
}

// pageNumber is the 1-based page a request asks for, to match faults
// before the request is authenticated; 0 for a $skiptoken that is not one
// of the simulator's.
func pageNumber(r *http.Request) int {
	tok := r.URL.Query().Get("$skiptoken")
	if tok == "" {
		return 1
	}
	cur, ok := decodeCursor(tok)
	if !ok {
		return 0
	}
	return cur.page
}
