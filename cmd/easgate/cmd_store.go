package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"easgate/config"
	"easgate/engine"
	"easgate/store"
)

func newStoreCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "store",
		Short: "Store maintenance: backup, check, compact",
		Long: `Maintain the store (the bbolt file named by store: in the config).

backup and check work while easgate run holds the store: they go through its control
socket. compact needs the store to itself: stop the service first.`,
	}
	cmd.AddCommand(newStoreBackupCmd(g), newStoreCheckCmd(g), newStoreCompactCmd(g))
	return cmd
}

func newStoreBackupCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "backup FILE",
		Short: "Write a consistent copy of the store to FILE (- for stdout)",
		Long: `Write a consistent copy of the store to FILE, created 0600 and replaced atomically
(it holds either its old content or a complete copy). The copy is taken in one read
transaction while easgate keeps working: through the running service's control socket,
or from the store opened read-only when no service runs. FILE - writes the copy to
stdout. The copy is checked to open as a store before the command succeeds.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cfg, lite, err := loadAttachable(g, cmd.ErrOrStderr())
			if cfg == nil {
				return err
			}
			dst := args[0]
			a, dialErr := attach(ctx, cfg, openRead)
			if a == nil && lite {
				return err
			}
			var (
				n   int64
				how string
			)
			if a != nil {
				defer a.close()
				how = "through the service's control socket"
				n, err = backupRemote(ctx, a, dst, cmd.OutOrStdout())
			} else {
				how = "from the store"
				n, err = backupLocal(cfg, dst, cmd.OutOrStdout())
				if err != nil && dialErr != nil && errors.Is(err, engine.ErrStoreInUse) {
					err = fmt.Errorf("%w; and its control socket: %v", err, dialErr)
				}
			}
			if err != nil {
				return err
			}
			if dst == "-" {
				return nil
			}
			if err := verifyStore(dst); err != nil {
				return fmt.Errorf("the backup %s does not open as a store: %w", dst, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "backed up %s to %s (%s), %s\n", cfg.Resolve(cfg.Store), dst, humanBytes(n), how)
			return nil
		},
	}
}

// backupRemote streams the service's snapshot into dst.
func backupRemote(ctx context.Context, a *app, dst string, stdout io.Writer) (int64, error) {
	if dst == "-" {
		return a.remote.Backup(ctx, stdout)
	}
	n, err := store.WriteFileAtomic(dst, func(w io.Writer) (int64, error) { return a.remote.Backup(ctx, w) })
	if err != nil {
		return n, fmt.Errorf("write %s: %w", dst, err)
	}
	return n, nil
}

// backupLocal opens the store read-only and copies it.
func backupLocal(cfg *config.Config, dst string, stdout io.Writer) (int64, error) {
	st, err := openStore(cfg, slog.New(slog.DiscardHandler), true)
	if err != nil {
		return 0, err
	}
	defer st.Close()
	if dst == "-" {
		return st.Backup(stdout)
	}
	return st.BackupFile(dst)
}

// verifyStore opens a store file read-only and closes it.
func verifyStore(path string) error {
	st, err := store.Open(path, store.Options{ReadOnly: true, LockTimeout: time.Second})
	if err != nil {
		return err
	}
	return st.Close()
}

func newStoreCheckCmd(g *globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check the store's consistency; exit 1 listing the problems",
		Long: `Check the store: every value decodes and sits under its key, the schema and meta
values are sane, and bbolt's own page, freelist and key-order checks pass. It runs in
the service when one holds the store (writes wait for it), else on the store opened
read-only. Exit 0 when healthy, 1 with every problem listed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output, outJSON, outText); err != nil {
				return err
			}
			ctx := cmd.Context()
			cfg, lite, err := loadAttachable(g, cmd.ErrOrStderr())
			if cfg == nil {
				return err
			}
			path := cfg.Resolve(cfg.Store)
			var problems []string
			a, dialErr := attach(ctx, cfg, openRead)
			if a == nil && lite {
				return err
			}
			if a != nil {
				defer a.close()
				if problems, err = a.remote.CheckStore(ctx); err != nil {
					return err
				}
			} else {
				st, err := openStore(cfg, slog.New(slog.DiscardHandler), true)
				switch {
				case errors.Is(err, store.ErrCorrupt):
					problems = []string{err.Error()}
				case err != nil:
					if dialErr != nil && errors.Is(err, engine.ErrStoreInUse) {
						err = fmt.Errorf("%w; and its control socket: %v", err, dialErr)
					}
					return err
				default:
					for _, p := range st.Check() {
						problems = append(problems, p.Error())
					}
					_ = st.Close()
				}
			}
			w := cmd.OutOrStdout()
			if output == outJSON {
				if problems == nil {
					problems = []string{}
				}
				if err := writeJSON(w, struct {
					Store    string   `json:"store"`
					Healthy  bool     `json:"healthy"`
					Problems []string `json:"problems"`
				}{path, len(problems) == 0, problems}); err != nil {
					return err
				}
			} else {
				for _, p := range problems {
					fmt.Fprintln(w, engine.Printable(p))
				}
				if len(problems) == 0 {
					fmt.Fprintf(w, "store %s is consistent\n", path)
				}
			}
			if len(problems) > 0 {
				return exitError{code: exitFailed, msg: fmt.Sprintf("store %s has %d problem(s)", path, len(problems))}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", outText, "output format: json or text")
	return cmd
}

func newStoreCompactCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "compact",
		Short: "Rewrite the store without free space (the service must be stopped)",
		Long: `Rewrite the store into a new file with full pages and no free space, and swap it in
atomically; the old file stays beside it as <store>.bak. The store must not be in use:
stop easgate run first (exit 3 otherwise).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			cfg, err := loadConfig(g, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if a, _ := attach(ctx, cfg, openRead); a != nil {
				in := a.remote.Info()
				a.close()
				return fmt.Errorf("%w: easgate run (pid %d) holds it; stop the service first (systemctl stop easgate)", engine.ErrStoreInUse, in.PID)
			}
			st, err := openStore(cfg, slog.New(slog.DiscardHandler), false)
			if err != nil {
				return err
			}
			defer st.Close()
			res, err := compactStore(st)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "compacted %s: %s → %s; the old file is %s\n", st.Path(), humanBytes(res.before), humanBytes(res.after), res.backup)
			return nil
		},
	}
}

// compacted is what compactStore did.
type compacted struct {
	before, after int64
	backup        string
}

// compactStore compacts st's file into a new one and swaps it in while
// still holding the store's lock, so that no writer can slip in between:
// the old file is hard-linked to <path>.bak (copied when the file system
// cannot link), then the new one is renamed over path. Every moment, path
// names a complete store.
func compactStore(st *store.Store) (compacted, error) {
	path := st.Path()
	fi, err := os.Stat(path)
	if err != nil {
		return compacted{}, err
	}
	res := compacted{before: fi.Size(), backup: path + ".bak"}
	tmp := path + ".compact"
	// A leftover of a compaction that died: we hold the lock, so it is ours.
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return res, fmt.Errorf("remove %s: %w", tmp, err)
	}
	if res.after, err = st.Compact(tmp); err != nil {
		return res, err
	}
	if err := os.Remove(res.backup); err != nil && !errors.Is(err, fs.ErrNotExist) {
		_ = os.Remove(tmp)
		return res, fmt.Errorf("replace %s: %w", res.backup, err)
	}
	if err := os.Link(path, res.backup); err != nil {
		if _, err := st.BackupFile(res.backup); err != nil {
			_ = os.Remove(tmp)
			return res, fmt.Errorf("keep the old store as %s: %w", res.backup, err)
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return res, fmt.Errorf("swap in the compacted store: %w", err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return res, nil
}

// humanBytes formats a size for people.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
