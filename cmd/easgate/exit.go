package main

import (
	"errors"
	"strings"

	"easgate/config"
	"easgate/engine"
)

// Exit codes (CONTRACTS.md). `check` uses the Nagios codes instead.
const (
	exitOK       = 0
	exitFailed   = 1
	exitUsage    = 2
	exitInUse    = 3
	exitBraked   = 4
	nagiosOK     = 0
	nagiosWarn   = 1
	nagiosCrit   = 2
	nagiosUnknwn = 3
)

// usageError marks a mistake in how a command was called (exit 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// exitError carries an exit code decided by a command itself (a braked run,
// a Nagios status); its message, if any, was already printed.
type exitError struct {
	code int
	msg  string
}

func (e exitError) Error() string { return e.msg }

// exitCode maps an error to the process exit code, in this one place.
func exitCode(err error) int {
	var ee exitError
	var ue usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ee):
		return ee.code
	case errors.Is(err, engine.ErrStoreInUse):
		return exitInUse
	case errors.Is(err, engine.ErrBraked):
		return exitBraked
	case errors.Is(err, config.ErrInvalid), errors.As(err, &ue), isCobraUsage(err):
		return exitUsage
	}
	return exitFailed
}

// isCobraUsage recognises cobra's own usage errors (unknown flag or
// command, wrong argument count), which it returns as plain errors.
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "flag needs an argument",
		"invalid argument", "accepts ", "requires at least", "requires at most", "required flag", "if any flags in the group"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

// message is the text printed for an error; empty when there is nothing
// more to say.
func message(err error) string {
	if err == nil {
		return ""
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.msg
	}
	return err.Error()
}
