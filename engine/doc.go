// Package engine is easgate's sync engine: the domain types, the ports it owns
// (ExchangeReader, ExchangeWriter, IntuneReader, Mailer, Store, Clock), the pure
// planner that turns observed state and policy into a Plan, the applier, the
// scheduler, and the API and event stream the console and the CLI use.
//
// It imports only the standard library. It never imports store, tui, an
// adapter (engine/exchange, engine/intune, engine/mailer), the simulators,
// bbolt, WinRM, msgraph or lipgloss: adapters plug in through the ports, and
// cmd/easgate wires them together.
package engine
