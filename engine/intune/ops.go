package intune

import "strings"

// Operation names reported to the observer: Graph path templates without
// the version, and the authority's endpoints.
const (
	OpManagedDevices    = "/deviceManagement/managedDevices"
	OpTransitiveMembers = "/groups/{id}/transitiveMembers"
	OpToken             = "token"
	OpDiscovery         = "discovery"
	OpAuthority         = "authority"
)

// graphOp turns a Graph request path into its template: the version
// dropped, object IDs as {id}, type casts (microsoft.graph.user) dropped,
// so that metrics have one series per operation rather than per group.
func graphOp(path string) string {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	if len(segs) > 0 && (segs[0] == "v1.0" || segs[0] == "beta") {
		segs = segs[1:]
	}
	var b strings.Builder
	for _, s := range segs {
		switch {
		case s == "":
			continue
		case strings.HasPrefix(s, "microsoft.graph.") || strings.HasPrefix(s, "graph."):
			continue
		case isObjectID(s):
			s = "{id}"
		}
		b.WriteByte('/')
		b.WriteString(s)
	}
	if b.Len() == 0 {
		return "/"
	}
	return b.String()
}

// authorityOp names a request to the authority.
func authorityOp(path string) string {
	switch {
	case strings.HasSuffix(path, "/oauth2/v2.0/token") || strings.HasSuffix(path, "/oauth2/token"):
		return OpToken
	case strings.HasSuffix(path, "/.well-known/openid-configuration"):
		return OpDiscovery
	}
	return OpAuthority
}
