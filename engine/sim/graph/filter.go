package graph

import (
	"strings"
	"time"

	"easgate/engine/sim/org"
)

// deviceFilter is a parsed $filter over managed devices; nil matches all.
type deviceFilter func(*org.ManagedDevice) bool

// parseDeviceFilter parses the $filter subset Intune's managedDevices
// honours: lastSyncDateTime and enrolledDateTime with gt or lt and a date,
// complianceState, operatingSystem and managementAgent with eq and a quoted
// string, clauses joined by "and", optionally parenthesised. Anything else
// (another property or operator, "or", "not", a malformed literal) makes the
// whole filter unsupported, and Graph then silently returns everything:
// so does this, returning nil. The simulator treats "or" as unsupported
// because Microsoft does not document it for this collection.
func parseDeviceFilter(s string) deviceFilter {
	toks, ok := tokenize(s)
	if !ok || len(toks) == 0 {
		return nil
	}
	var clauses []deviceFilter
	for len(toks) > 0 {
		// Strip balanced parentheses around one clause.
		open := 0
		for open < len(toks) && toks[open] == "(" {
			open++
		}
		toks = toks[open:]
		if len(toks) < 3 {
			return nil
		}
		f := clause(toks[0], toks[1], toks[2])
		if f == nil {
			return nil
		}
		clauses = append(clauses, f)
		toks = toks[3:]
		for range open {
			if len(toks) == 0 || toks[0] != ")" {
				return nil
			}
			toks = toks[1:]
		}
		if len(toks) == 0 {
			break
		}
		if !strings.EqualFold(toks[0], "and") || len(toks) == 1 {
			return nil
		}
		toks = toks[1:]
	}
	return func(d *org.ManagedDevice) bool {
		for _, c := range clauses {
			if !c(d) {
				return false
			}
		}
		return true
	}
}

func clause(prop, op, lit string) deviceFilter {
	switch prop {
	case "lastSyncDateTime", "enrolledDateTime":
		t, ok := parseDateLiteral(lit)
		if !ok {
			return nil
		}
		field := func(d *org.ManagedDevice) time.Time { return d.LastSyncDateTime }
		if prop == "enrolledDateTime" {
			field = func(d *org.ManagedDevice) time.Time { return d.EnrolledDateTime }
		}
		switch op {
		case "gt":
			return func(d *org.ManagedDevice) bool { return field(d).After(t) }
		case "lt":
			return func(d *org.ManagedDevice) bool { return field(d).Before(t) }
		}
		return nil
	case "complianceState", "operatingSystem", "managementAgent":
		if op != "eq" || len(lit) < 2 || lit[0] != '\'' || lit[len(lit)-1] != '\'' {
			return nil
		}
		want := strings.ReplaceAll(lit[1:len(lit)-1], "''", "'")
		switch prop {
		case "complianceState":
			return func(d *org.ManagedDevice) bool { return strings.EqualFold(complianceOf(d), want) }
		case "operatingSystem":
			return func(d *org.ManagedDevice) bool { return strings.EqualFold(d.OperatingSystem, want) }
		default:
			return func(d *org.ManagedDevice) bool { return strings.EqualFold(d.ManagementAgent, want) }
		}
	}
	return nil
}

// parseDateLiteral accepts an OData DateTimeOffset literal, bare as OData
// writes it or quoted as many scripts do.
func parseDateLiteral(lit string) (time.Time, bool) {
	lit = strings.Trim(lit, "'")
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02"} {
		if t, err := time.Parse(layout, lit); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// tokenize splits a $filter into words, parentheses and quoted strings
// (with ” escaping a quote).
func tokenize(s string) ([]string, bool) {
	var out []string
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == ' ' || c == '\t':
			i++
		case c == '(' || c == ')':
			out = append(out, string(c))
			i++
		case c == '\'':
			j := i + 1
			for {
				if j >= len(s) {
					return nil, false
				}
				if s[j] == '\'' {
					if j+1 < len(s) && s[j+1] == '\'' {
						j += 2
						continue
					}
					break
				}
				j++
			}
			out = append(out, s[i:j+1])
			i = j + 1
		default:
			j := i
			for j < len(s) && s[j] != ' ' && s[j] != '\t' && s[j] != '(' && s[j] != ')' {
				j++
			}
			out = append(out, s[i:j])
			i = j
		}
	}
	return out, true
}
