package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Set at build time, e.g.
//
//	go build -ldflags "-X main.version=1.4.0 -X main.commit=$(git rev-parse HEAD) -X main.date=$(date -u +%FT%TZ)" ./cmd/easgate
//
// Left empty, they come from the build information Go records (the module
// version of `go install …@v1.4.0`, the VCS revision and time of a build in
// a checkout).
var (
	version string
	commit  string
	date    string
)

// versionInfo is what `easgate version` reports.
type versionInfo struct {
	Version  string `json:"version"`
	Commit   string `json:"commit"`
	Date     string `json:"date"`
	Modified bool   `json:"modified,omitempty"` // built from a checkout with uncommitted changes
	Go       string `json:"go"`
	Platform string `json:"platform"`
}

// buildInfo returns the version, commit and build date: from the linker
// flags, else from the build information, else "devel"/"unknown".
func buildInfo() versionInfo {
	v := versionInfo{Version: version, Commit: commit, Date: date, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if v.Commit == "" {
					v.Commit = s.Value
				}
			case "vcs.time":
				if v.Date == "" {
					v.Date = s.Value
				}
			case "vcs.modified":
				v.Modified = s.Value == "true" && commit == ""
			}
		}
	}
	if v.Version == "" {
		v.Version = "devel"
	}
	if v.Commit == "" {
		v.Commit = "unknown"
	}
	if v.Date == "" {
		v.Date = "unknown"
	}
	return v
}

func newVersionCmd(g *globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and build date",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output, outJSON, outText); err != nil {
				return err
			}
			v := buildInfo()
			if output == outJSON {
				return writeJSON(cmd.OutOrStdout(), v)
			}
			c := v.Commit
			if len(c) > 12 {
				c = c[:12]
			}
			if v.Modified {
				c += "-dirty"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "easgate %s (commit %s, built %s, %s %s)\n", v.Version, c, v.Date, v.Go, v.Platform)
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", outText, "output format: json or text")
	return cmd
}
