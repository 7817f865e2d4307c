package winrm

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// MaxCommandLine is the longest command line cmd.exe accepts, in characters.
const MaxCommandLine = 8191

// Exit codes cmd.exe reports.
const (
	// exitNotRecognized is cmd.exe /c's exit code for an unknown program:
	// 1, though %ERRORLEVEL% inside a batch reads 9009 (npm's "errno 1"
	// under "is not recognized" is the familiar sight of it).
	exitNotRecognized = 1
	exitLineTooLong   = 1
)

// Program is an executable the simulated server can run, such as
// powershell.exe. Run reads p.Stdin until it needs no more, writes to
// p.Stdout and p.Stderr, and returns the process exit code. ctx is
// cancelled when the command is terminated; reads and writes then fail
// with ErrTerminated.
type Program interface {
	Run(ctx context.Context, p *Process) int
}

// ProgramFunc adapts a function to Program.
type ProgramFunc func(ctx context.Context, p *Process) int

// Run calls f.
func (f ProgramFunc) Run(ctx context.Context, p *Process) int { return f(ctx, p) }

// Process is one run of a Program.
type Process struct {
	Host        string   // the server's host name, as `hostname` prints it
	User        string   // the authenticated WinRM user
	CommandLine string   // the whole line cmd.exe received
	Args        []string // the line split as the C runtime does; Args[0] is the program as typed
	Stdin       io.Reader
	Stdout      io.Writer
	Stderr      io.Writer
}

// programKey normalises an executable name as cmd.exe resolves it: the
// base name, case-insensitive, with or without an executable extension.
func programKey(name string) string {
	name = strings.Trim(name, `"`)
	if i := strings.LastIndexAny(name, `\/`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.ToLower(name)
	for _, ext := range []string{".exe", ".com", ".bat", ".cmd"} {
		if strings.HasSuffix(name, ext) {
			return strings.TrimSuffix(name, ext)
		}
	}
	return name
}

// runCommandLine runs one command line as `cmd.exe /c` does and returns
// its exit code.
func (s *Server) runCommandLine(ctx context.Context, p *Process) int {
	line := p.CommandLine
	if len([]rune(line)) > MaxCommandLine {
		fmt.Fprint(p.Stderr, "The command line is too long.\r\n")
		return exitLineTooLong
	}
	trimmed := strings.TrimLeft(line, " \t")
	p.Args = splitArgs(trimmed)
	if len(p.Args) == 0 {
		return 0
	}
	verb := strings.ToLower(p.Args[0])
	switch {
	case verb == "echo" || verb == "echo.":
		rest := strings.TrimPrefix(trimmed[len(p.Args[0]):], " ")
		if rest == "" && verb == "echo" {
			rest = "ECHO is on."
		}
		fmt.Fprint(p.Stdout, rest+"\r\n")
		return 0
	case programKey(verb) == "hostname":
		fmt.Fprint(p.Stdout, p.Host+"\r\n")
		return 0
	}
	prog := s.program(programKey(p.Args[0]))
	if prog == nil {
		fmt.Fprintf(p.Stderr, "'%s' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n", p.Args[0])
		return exitNotRecognized
	}
	return prog.Run(ctx, p)
}

// splitArgs splits a command line as the Microsoft C runtime does:
// whitespace separates arguments outside double quotes; 2n backslashes
// before a quote are n backslashes and the quote toggles quoting; 2n+1 are
// n backslashes and a literal quote; a doubled quote inside quotes is a
// literal quote.
func splitArgs(line string) []string {
	var args []string
	var cur strings.Builder
	inArg, quoted := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\\':
			n := 0
			for i < len(line) && line[i] == '\\' {
				n++
				i++
			}
			if i < len(line) && line[i] == '"' {
				cur.WriteString(strings.Repeat(`\`, n/2))
				if n%2 == 1 {
					cur.WriteByte('"')
				} else {
					quoted = !quoted
				}
			} else {
				cur.WriteString(strings.Repeat(`\`, n))
				i--
			}
			inArg = true
		case c == '"':
			if quoted && i+1 < len(line) && line[i+1] == '"' {
				cur.WriteByte('"')
				i++
			} else {
				quoted = !quoted
			}
			inArg = true
		case (c == ' ' || c == '\t') && !quoted:
			if inArg {
				args = append(args, cur.String())
				cur.Reset()
				inArg = false
			}
		default:
			cur.WriteByte(c)
			inArg = true
		}
	}
	if inArg {
		args = append(args, cur.String())
	}
	return args
}
