// Package org is the simulated organisation that easgate's simulators
// serve: users with mailboxes and Entra identities, their Exchange ActiveSync
// partnerships and allow/block lists, the Exchange organisation's ActiveSync
// settings and device access rules, Intune's managed devices, and Entra
// groups. The Exchange and Graph simulators are two views of one Org, so
// both sides stay consistent, and tests assert against it directly.
//
// It imports only the standard library.
package org
