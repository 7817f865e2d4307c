package exchange

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"
)

// exitBadArgs is the exit code powershell.exe returns when it cannot
// process its command line (0xFFFE0000).
const exitBadArgs = -131072

// Messages powershell.exe writes, as plain text, before its host starts.
const (
	msgBadEncoding = "Cannot process the command because the value specified with -EncodedCommand is not properly encoded. The value must be Base64 encoded."
	msgMissingArg  = "Cannot process the command because of a missing parameter. A command must follow -%s."
)

// invocation is what powershell.exe's command line asked for.
type invocation struct {
	encoded        string // -EncodedCommand value, still encoded
	command        string // -Command value
	file           string // -File value
	noProfile      bool
	nonInteractive bool
	policy         string
}

// parameters of powershell.exe 5.1, each with the shortest prefix it
// accepts; a parameter may be given by any prefix at least that long.
var parameters = []struct {
	name, min string
	value     bool
}{
	{"encodedcommand", "e", true}, {"executionpolicy", "ex", true}, {"command", "c", true},
	{"file", "f", true}, {"noprofile", "nop", false}, {"noninteractive", "noni", false},
	{"nologo", "nol", false}, {"noexit", "noe", false}, {"inputformat", "inp", true},
	{"outputformat", "o", true}, {"windowstyle", "w", true}, {"version", "v", true},
	{"sta", "s", false}, {"mta", "m", false}, {"configurationname", "config", true},
}

// errBadArgs carries the message powershell.exe prints for a command line
// it cannot process.
type errBadArgs struct{ message string }

func (e *errBadArgs) Error() string { return e.message }

// parseArgs reads powershell.exe's arguments (after the program name).
func parseArgs(args []string) (*invocation, error) {
	inv := &invocation{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") && !strings.HasPrefix(a, "/") {
			// A bare word starts a -Command.
			inv.command = strings.Join(args[i:], " ")
			return inv, nil
		}
		name := strings.ToLower(a[1:])
		if name == "ep" {
			name = "executionpolicy"
		}
		if name == "ec" {
			name = "encodedcommand"
		}
		var param string
		var takesValue bool
		for _, p := range parameters {
			if strings.HasPrefix(p.name, name) && len(name) >= len(p.min) {
				param, takesValue = p.name, p.value
				break
			}
		}
		if param == "" {
			// PowerShell runs an unknown parameter as the start of a command.
			inv.command = strings.Join(args[i:], " ")
			return inv, nil
		}
		value := ""
		if takesValue {
			if i+1 >= len(args) {
				return nil, &errBadArgs{fmt.Sprintf(msgMissingArg, displayName(param))}
			}
			i++
			value = args[i]
		}
		switch param {
		case "encodedcommand":
			inv.encoded = value
		case "command":
			inv.command = strings.Join(args[i:], " ")
			return inv, nil
		case "file":
			inv.file = value
			return inv, nil
		case "noprofile":
			inv.noProfile = true
		case "noninteractive":
			inv.nonInteractive = true
		case "executionpolicy":
			inv.policy = value
		}
	}
	return inv, nil
}

func displayName(param string) string {
	switch param {
	case "encodedcommand":
		return "EncodedCommand"
	case "executionpolicy":
		return "ExecutionPolicy"
	}
	return strings.ToUpper(param[:1]) + param[1:]
}

// decodeCommand decodes an -EncodedCommand value: base64 (whitespace
// ignored, as .NET's Convert.FromBase64String does) of UTF-16LE text.
func decodeCommand(encoded string) (string, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(encoded), ""))
	if err != nil || encoded == "" {
		return "", &errBadArgs{msgBadEncoding}
	}
	units := make([]uint16, 0, len(raw)/2)
	for i := 0; i+1 < len(raw); i += 2 {
		units = append(units, uint16(raw[i])|uint16(raw[i+1])<<8)
	}
	s := string(utf16.Decode(units))
	if len(raw)%2 == 1 {
		s += "\uFFFD"
	}
	return s, nil
}

// badArgsMessage returns the text powershell.exe prints for err, if err is
// a command line problem.
func badArgsMessage(err error) (string, bool) {
	var e *errBadArgs
	if errors.As(err, &e) {
		return e.message, true
	}
	return "", false
}
