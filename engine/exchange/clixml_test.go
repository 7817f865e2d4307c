package exchange

import (
	"os"
	"slices"
	"testing"
)

func TestParseStderr(t *testing.T) {
	tests := []struct {
		file     string
		errors   []string
		warnings []string
		plain    string
	}{
		{file: "stderr-progress.txt"},
		{file: "stderr-not-recognized.txt", errors: []string{
			"Get-MobileDevice : The term 'Get-MobileDevice' is not recognized as the name of a cmdlet, function, script file, or operable program. Check the spelling of the name, or if a path was included, verify that the path is correct and try again."}},
		{file: "stderr-warning.txt", warnings: []string{"The command completed successfully but no settings of 'contoso.com/Users/Anna' have been modified."}},
		{file: "stderr-cut-off.txt", errors: []string{
			"New-PSSession : [ex01.contoso.com] Connecting to remote server ex01.contoso.com failed with the following error message : Access is denied. For more information, see the about_Remote_Troubleshooting Help topic."}},
		{file: "stderr-cmd.txt", plain: "'powershell.exe' is not recognized as an internal or external command,\r\noperable program or batch file."},
		{file: "stderr-objects.txt", errors: []string{`Set-CASMailbox : Couldn't find object "x". Line two`, "first", "second error with emoji 😀 and tab ."}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data, err := os.ReadFile("testdata/" + tt.file)
			if err != nil {
				t.Fatal(err)
			}
			s := parseStderr(data)
			if !slices.Equal(s.Errors, tt.errors) || !slices.Equal(s.Warnings, tt.warnings) || s.Plain != tt.plain {
				t.Errorf("errors %q\nwarnings %q\nplain %q", s.Errors, s.Warnings, s.Plain)
			}
		})
	}
}

func TestDecodeEscapes(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{name: "none", in: "plain", want: "plain"},
		{name: "crlf", in: "a_x000D__x000A_", want: "a\r\n"},
		{name: "escaped underscore", in: "about_x005F_Remote", want: "about_Remote"},
		{name: "surrogate pair", in: "_xD83D__xDE00_!", want: "😀!"},
		{name: "lone surrogate", in: "_xD83D_x", want: "\uFFFDx"},
		{name: "not an escape", in: "_x12_ _xZZZZ_", want: "_x12_ _xZZZZ_"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := decodeEscapes(tt.in); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
