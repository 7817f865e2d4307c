package graph

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"easgate/engine/sim/org"
)

// Directory paging limits: Graph pages directory objects 100 at a time by
// default and refuses a $top above 999.
const (
	DefaultDirectoryPage = 100
	MaxDirectoryPage     = 999
)

type userField struct {
	name  string
	write func(w *jw, u *org.User)
}

func splitName(u *org.User) (given, sur string) {
	given, sur, _ = strings.Cut(u.DisplayName, " ")
	return given, sur
}

// userFields are the user properties the simulator knows, in Graph's order.
var userFields = []userField{
	{"businessPhones", func(w *jw, _ *org.User) { w.raw("[]") }},
	{"displayName", func(w *jw, u *org.User) { w.str(u.DisplayName) }},
	{"givenName", func(w *jw, u *org.User) { g, _ := splitName(u); w.str(g) }},
	{"jobTitle", func(w *jw, _ *org.User) { w.null() }},
	{"mail", func(w *jw, u *org.User) {
		if u.PrimarySMTP == "" {
			w.null()
			return
		}
		w.str(u.PrimarySMTP)
	}},
	{"mobilePhone", func(w *jw, _ *org.User) { w.null() }},
	{"officeLocation", func(w *jw, _ *org.User) { w.null() }},
	{"preferredLanguage", func(w *jw, _ *org.User) { w.null() }},
	{"surname", func(w *jw, u *org.User) { _, s := splitName(u); w.str(s) }},
	{"userPrincipalName", func(w *jw, u *org.User) { w.str(u.UPN) }},
	{"id", func(w *jw, u *org.User) { w.str(u.ID) }},
	// Not returned unless selected.
	{"proxyAddresses", func(w *jw, u *org.User) { w.strs(u.ProxyAddresses) }},
	{"accountEnabled", func(w *jw, _ *org.User) { w.bool(true) }},
	{"mailNickname", func(w *jw, u *org.User) { l, _, _ := strings.Cut(u.PrimarySMTP, "@"); w.str(l) }},
	{"onPremisesSamAccountName", func(w *jw, u *org.User) { w.str(u.SamAccountName) }},
}

// defaultUserFields is how many of userFields Graph returns without $select.
const defaultUserFields = 11

var userFieldIndex = func() map[string]int {
	m := make(map[string]int, len(userFields))
	for i, f := range userFields {
		m[f.name] = i
	}
	return m
}()

// isGUID reports whether s is a directory object ID's shape.
func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// groupUsers serves GET /v1.0/groups/{id}/transitiveMembers/microsoft.graph.user.
func (s *Server) groupUsers(w http.ResponseWriter, r *http.Request, c *reqCtx, id string, cur cursor) {
	if !isGUID(id) {
		s.graphError(w, r, c, http.StatusBadRequest, "Request_BadRequest", fmt.Sprintf("Invalid object identifier '%s'.", id))
		return
	}
	q := r.URL.Query()
	sel, unknown := parseSelect(q.Get("$select"), func(n string) bool { _, ok := userFieldIndex[n]; return ok })
	if unknown != "" {
		s.graphError(w, r, c, http.StatusBadRequest, "Request_BadRequest",
			fmt.Sprintf("Parsing OData Select and Expand failed: Could not find a property named '%s' on type 'microsoft.graph.user'.", unknown))
		return
	}
	top := DefaultDirectoryPage
	if v := q.Get("$top"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxDirectoryPage {
			s.graphError(w, r, c, http.StatusBadRequest, "Request_BadRequest",
				fmt.Sprintf("Invalid page size specified: '%s'. Must be between 1 and %d inclusive.", v, MaxDirectoryPage))
			return
		}
		top = n
	}
	fields := userFields[:defaultUserFields]
	if sel != nil {
		fields = make([]userField, 0, len(sel))
		seen := map[int]bool{}
		for _, n := range sel {
			if i := userFieldIndex[n]; !seen[i] {
				seen[i] = true
				fields = append(fields, userFields[i])
			}
		}
	}

	s.org.Mu.RLock()
	gid := id
	if s.org.GroupByID(gid) == nil {
		gid = strings.ToLower(id) // object IDs compare case-insensitively
	}
	if s.org.GroupByID(gid) == nil {
		s.org.Mu.RUnlock()
		s.graphError(w, r, c, http.StatusNotFound, "Request_ResourceNotFound",
			fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", id))
		return
	}
	users := s.org.TransitiveUsers(gid)
	i := cur.start(len(users), func(i int) string { return users[i].ID })
	end := min(i+top, len(users))

	j := jw{b: make([]byte, 0, 256+(end-i)*(40+30*len(fields)))}
	j.raw(`{"@odata.context":`)
	ctxURL := baseURL(r) + "/v1.0/$metadata#users"
	if sel != nil {
		ctxURL += "(" + strings.Join(sel, ",") + ")"
	}
	j.str(ctxURL)
	if end < len(users) {
		j.raw(`,"@odata.nextLink":`)
		j.str(s.nextLink(r, cursor{page: cur.page + 1, index: end, nextID: users[end].ID}))
	}
	j.raw(`,"value":[`)
	for n, u := range users[i:end] {
		if n > 0 {
			j.raw(",")
		}
		j.raw("{")
		first := true
		for _, f := range fields {
			j.key(&first, f.name)
			f.write(&j, u)
		}
		j.raw("}")
	}
	s.org.Mu.RUnlock()
	j.raw("]}")

	if !s.pay(r, memberPageCost(end-i)) {
		return
	}
	s.count(func(st *Stats) {
		st.Graph++
		st.ByPath[r.URL.Path]++
		st.Pages++
		st.Objects += end - i
	})
	writeJSON(w, r, http.StatusOK, j.b)
}
