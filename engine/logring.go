package engine

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// LogRing keeps the last log lines in memory for the console's log view.
// It is a slog.Handler; put it beside the file handler.
type LogRing struct {
	buf   *ring // shared by the handlers WithAttrs derives
	level slog.Leveler
	attrs string
}

type ring struct {
	mu      sync.Mutex
	entries []LogEntry
	next    int
	full    bool
}

// NewLogRing keeps the last n records at or above level.
func NewLogRing(n int, level slog.Leveler) *LogRing {
	return &LogRing{buf: &ring{entries: make([]LogEntry, max(n, 1))}, level: level}
}

// Enabled implements slog.Handler.
func (r *LogRing) Enabled(_ context.Context, l slog.Level) bool { return l >= r.level.Level() }

// Handle implements slog.Handler.
func (r *LogRing) Handle(_ context.Context, rec slog.Record) error {
	var sb strings.Builder
	sb.WriteString(r.attrs)
	rec.Attrs(func(a slog.Attr) bool {
		writeAttr(&sb, "", a)
		return true
	})
	e := LogEntry{Time: rec.Time.UTC(), Level: rec.Level.String(), Message: rec.Message, Attrs: strings.TrimSpace(sb.String())}
	b := r.buf
	b.mu.Lock()
	defer b.mu.Unlock()
	b.entries[b.next] = e
	b.next = (b.next + 1) % len(b.entries)
	if b.next == 0 {
		b.full = true
	}
	return nil
}

func writeAttr(b *strings.Builder, prefix string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Value.Kind() == slog.KindGroup {
		for _, g := range a.Value.Group() {
			writeAttr(b, prefix+a.Key+".", g)
		}
		return
	}
	b.WriteByte(' ')
	b.WriteString(prefix + a.Key)
	b.WriteByte('=')
	v := a.Value.String()
	if a.Value.Kind() == slog.KindTime {
		v = a.Value.Time().UTC().Format(time.RFC3339)
	}
	if strings.ContainsAny(v, " \"=") {
		v = `"` + strings.ReplaceAll(v, `"`, `\"`) + `"`
	}
	b.WriteString(v)
}

// WithAttrs implements slog.Handler.
func (r *LogRing) WithAttrs(attrs []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(r.attrs)
	for _, a := range attrs {
		writeAttr(&b, "", a)
	}
	c := *r
	c.attrs = b.String()
	return &c
}

// WithGroup implements slog.Handler; groups are flattened into key prefixes
// by the attributes that follow.
func (r *LogRing) WithGroup(string) slog.Handler { return r }

// Entries returns up to limit of the newest lines, oldest first.
func (r *LogRing) Entries(limit int) []LogEntry {
	b := r.buf
	b.mu.Lock()
	defer b.mu.Unlock()
	var all []LogEntry
	if b.full {
		all = append(all, b.entries[b.next:]...)
	}
	all = append(all, b.entries[:b.next]...)
	if limit > 0 && len(all) > limit {
		all = all[len(all)-limit:]
	}
	return all
}
