// Command easgate keeps Exchange ActiveSync open only to devices Intune
// vouches for. This package is wiring only: flags → config → logger → store →
// adapters → engine → console or headless service. It is the only package
// that links every adapter, including engine/intune and the Graph SDK.
package main
