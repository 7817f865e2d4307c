// Package config reads easgate.yaml: strictly (an unknown key is an error),
// with every problem reported as file:line, secrets resolved from *_file keys
// or the environment and never from the file itself, and the defaults
// CONTRACTS.md documents. It imports the engine for the policy it maps to,
// and no adapter, store or console.
package config
