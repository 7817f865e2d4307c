// Package archtest holds the test that enforces easgate's dependency rules
// (DESIGN.md) with `go list`: the engine imports only the standard library,
// the console never reaches the store or an adapter, adapters never import
// each other, simulators import nothing of what they imitate, and only
// cmd/easgate links engine/intune and the Graph SDK. It has no code.
package archtest
