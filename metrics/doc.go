// Package metrics exposes easgate's Prometheus metrics: how runs go (by
// kind and status, durations per phase), what they changed and mailed, the
// devices by state, the safety brake, the health of Exchange and Graph, and
// every call the adapters make to a remote system, with latency and errors.
//
// Metrics implements engine.CallObserver, which the service hands to the
// adapters; Watch follows the engine's event stream for finished runs; the
// device and health gauges are read from engine.Status when Prometheus
// scrapes, so they are never staler than the engine itself.
//
// Package metrics imports the engine's API and domain types and
// prometheus/client_golang; it must not import store, tui, an adapter or the
// simulators.
package metrics
