package exchange

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// clixmlWidth is where PowerShell's host wraps error lines on stderr.
const clixmlWidth = 120

// clixml writes PowerShell's serialized error, warning and progress
// records to stderr, as powershell.exe does when its output is redirected:
// a "#< CLIXML" line, then an <Objs> document whose records stream out as
// they happen and which closes when the process ends.
type clixml struct {
	w       io.Writer
	started bool
	refs    int
}

func (c *clixml) begin() {
	if c.started {
		return
	}
	c.started = true
	_, _ = io.WriteString(c.w, "#< CLIXML\r\n<Objs Version=\"1.1.0.1\" xmlns=\"http://schemas.microsoft.com/powershell/2004/04\">")
}

// end closes the document, if one was started.
func (c *clixml) end() {
	if c.started {
		_, _ = io.WriteString(c.w, "</Objs>")
	}
}

// progress writes a completed progress record, as the module auto-loader
// does at start-up ("Preparing modules for first use.").
func (c *clixml) progress(activity string) {
	c.begin()
	tn := `<TN RefId="0"><T>System.Management.Automation.PSCustomObject</T><T>System.Object</T></TN>`
	if c.refs > 0 {
		tn = `<TNRef RefId="0" />`
	}
	fmt.Fprintf(c.w, `<Obj S="progress" RefId="%d">%s<MS><I64 N="SourceId">1</I64><PR N="Record"><AV>%s</AV><AI>0</AI><Nil /><PI>-1</PI><PC>-1</PC><T>Completed</T><SR>-1</SR><SD> </SD></PR></MS></Obj>`,
		c.refs, tn, encode(activity))
	c.refs++
}

// lines writes text as records of a stream ("Error", "warning",
// "verbose"), one per host line, each ending in CRLF.
func (c *clixml) lines(stream, text string) {
	c.begin()
	for _, line := range strings.Split(strings.TrimRight(text, "\r\n"), "\n") {
		for _, part := range wrap(strings.TrimRight(line, "\r"), clixmlWidth) {
			fmt.Fprintf(c.w, `<S S="%s">%s</S>`, stream, encode(part+"\r\n"))
		}
	}
}

// errorRecord writes an error as the console host renders it: the
// message, the position, the category and the error ID, then a blank line.
func (c *clixml) errorRecord(e *psError) {
	var b strings.Builder
	if e.command != "" {
		b.WriteString(e.command + " : ")
	}
	b.WriteString(e.message + "\n")
	if e.line > 0 {
		fmt.Fprintf(&b, "At line:%d char:%d\n+ %s\n+ %s%s\n", e.line, e.char, e.source,
			strings.Repeat(" ", max(0, e.char-1)), strings.Repeat("~", max(1, e.width)))
	}
	fmt.Fprintf(&b, "    + CategoryInfo          : %s\n    + FullyQualifiedErrorId : %s\n \n", e.category, e.errorID)
	c.lines("Error", b.String())
}

// warning writes a warning record; the host prefixes nothing in CLIXML.
func (c *clixml) warning(text string) { c.lines("warning", text) }

// wrap splits a line into pieces of at most width characters.
func wrap(line string, width int) []string {
	if utf8.RuneCountInString(line) <= width {
		return []string{line}
	}
	var out []string
	r := []rune(line)
	for len(r) > width {
		out = append(out, string(r[:width]))
		r = r[width:]
	}
	return append(out, string(r))
}

// encode escapes text as PowerShell's serializer does: XML's special
// characters as entities, control characters as _xHHHH_, and an
// underscore that would read as such an escape as _x005F_.
func encode(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == '&':
			b.WriteString("&amp;")
		case r == '<':
			b.WriteString("&lt;")
		case r == '>':
			b.WriteString("&gt;")
		case r < 0x20 || r == 0x7f || r == utf8.RuneError:
			fmt.Fprintf(&b, "_x%04X_", r)
		case r == '_' && strings.HasPrefix(s[i:], "_x"):
			b.WriteString("_x005F_")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// psError is a PowerShell error record.
type psError struct {
	command  string // the cmdlet that failed, shown before the message
	message  string
	line     int // 1-based position in the script; 0 when unknown
	char     int
	width    int // length of the offending text
	source   string
	category string // e.g. "ObjectNotFound: (Get-Foo:String) [], CommandNotFoundException"
	errorID  string
}
