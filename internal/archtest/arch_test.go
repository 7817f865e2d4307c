package archtest

import (
	"bytes"
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

type pkg struct {
	ImportPath string
	ForTest    string
	Standard   bool
	Deps       []string
}

// listAll returns every package of the module, with test variants, and the
// packages each one links.
func listAll(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-e", "-test", "-json=ImportPath,ForTest,Standard,Deps", "easgate/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 {
		t.Fatal("go list found no packages")
	}
	return pkgs
}

// base is the package a test variant belongs to: "easgate/x [easgate/x.test]"
// and "easgate/x.test" both belong to easgate/x.
func base(p pkg) string {
	path := p.ImportPath
	if i := strings.IndexByte(path, ' '); i >= 0 {
		path = path[:i]
	}
	path = strings.TrimSuffix(path, ".test")
	if p.ForTest != "" {
		return p.ForTest
	}
	return strings.TrimSuffix(path, "_test")
}

func isStd(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".") && first != "easgate"
}

func under(path, prefix string) bool {
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

var graphSDK = []string{
	"github.com/microsoftgraph/", "github.com/microsoft/kiota", "github.com/Azure/azure-sdk-for-go/sdk/azidentity",
}

func isGraphSDK(dep string) bool {
	for _, p := range graphSDK {
		if strings.HasPrefix(dep, p) {
			return true
		}
	}
	return false
}

func TestDependencyRules(t *testing.T) {
	pkgs := listAll(t)
	// The rules below only mean something if go list saw the packages they
	// govern, with their dependencies and test variants.
	seen := map[string]bool{}
	for _, p := range pkgs {
		if len(p.Deps) > 0 {
			seen[p.ImportPath] = true
		}
	}
	for _, want := range []string{"easgate/engine", "easgate/engine [easgate/engine.test]", "easgate/config"} {
		if !seen[want] {
			t.Fatalf("go list did not report %q with its dependencies; the rules would pass vacuously", want)
		}
	}
	adapters := []string{"easgate/engine/exchange", "easgate/engine/intune", "easgate/engine/mailer"}
	for _, p := range pkgs {
		owner := base(p)
		isTest := p.ImportPath != owner
		for _, dep := range p.Deps {
			dep, _, _ = strings.Cut(dep, " ")
			// engine: the standard library only (its own tests may use more).
			if owner == "easgate/engine" && !isTest && !isStd(dep) {
				t.Errorf("easgate/engine imports %s: the engine imports only the standard library", dep)
			}
			// Only cmd/easgate and engine/intune itself link engine/intune
			// and the Graph SDK, in code or tests.
			if owner != "easgate/cmd/easgate" && owner != "easgate/engine/intune" &&
				(under(dep, "easgate/engine/intune") || isGraphSDK(dep)) {
				t.Errorf("%s links %s: only cmd/easgate and engine/intune may (the Graph SDK takes minutes to compile)", p.ImportPath, dep)
			}
			if isTest {
				continue
			}
			switch {
			case under(owner, "easgate/tui"):
				if under(dep, "easgate/store") || under(dep, "easgate/engine/sim") || containsPrefix(adapters, dep) ||
					strings.HasPrefix(dep, "go.etcd.io/bbolt") || strings.HasPrefix(dep, "github.com/masterzen/") {
					t.Errorf("%s imports %s: the console talks to the engine only", owner, dep)
				}
			case containsPrefix(adapters, owner):
				for _, other := range adapters {
					if under(dep, other) && !under(owner, other) {
						t.Errorf("%s imports %s: adapters never import each other", owner, dep)
					}
				}
				if under(dep, "easgate/store") || under(dep, "easgate/tui") || under(dep, "easgate/engine/sim") {
					t.Errorf("%s imports %s: adapters import the engine only", owner, dep)
				}
			case under(owner, "easgate/engine/sim"):
				if containsPrefix(adapters, dep) || under(dep, "easgate/store") || under(dep, "easgate/tui") {
					t.Errorf("%s imports %s: simulators speak the wire protocol and import nothing they imitate", owner, dep)
				}
			case under(owner, "easgate/control"), under(owner, "easgate/metrics"):
				if under(dep, "easgate/store") || under(dep, "easgate/tui") || under(dep, "easgate/engine/sim") || containsPrefix(adapters, dep) {
					t.Errorf("%s imports %s: the control socket and metrics speak the engine's API only", owner, dep)
				}
			case under(owner, "easgate/internal/bench"):
				// The harness measures easgate by running its binary: linking
				// the engine, the store or an adapter would measure itself.
				if under(dep, "easgate/engine") && !under(dep, "easgate/engine/sim") || under(dep, "easgate/store") || under(dep, "easgate/tui") {
					t.Errorf("%s imports %s: the bench harness runs easgate as a process and links only the simulators", owner, dep)
				}
			case under(owner, "easgate/store"), under(owner, "easgate/config"):
				if containsPrefix(adapters, dep) || under(dep, "easgate/tui") || under(dep, "easgate/engine/sim") {
					t.Errorf("%s imports %s", owner, dep)
				}
			}
		}
	}
}

func containsPrefix(list []string, path string) bool {
	for _, l := range list {
		if under(path, l) {
			return true
		}
	}
	return false
}
