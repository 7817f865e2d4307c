//go:build !race

package tui

// raceEnabled is true when the race detector is on: timings mean nothing then.
const raceEnabled = false
