// Package graph simulates the parts of Microsoft Entra ID and Microsoft Graph
// that easgate uses, over a simulated organisation (package org): the OpenID
// Connect discovery document and the client-credentials token endpoint that
// azidentity (MSAL for Go) talks to, Intune's managed devices
// (/v1.0/deviceManagement/managedDevices) and a group's transitive user
// members (/v1.0/groups/{id}/transitiveMembers/microsoft.graph.user).
//
// It speaks the wire protocol with Graph's JSON shapes, enum spellings,
// paging (@odata.nextLink with an opaque $skiptoken), $select, $top, the
// subset of $filter Intune honours (an unsupported filter is silently
// ignored, as Graph does), Graph's error bodies, and 401s for a missing,
// unknown or expired bearer token. Tests inject 429 and 503 faults with
// Retry-After per path and page, and read request counters.
//
// It serves HTTPS with a certificate from package simtls. It imports only
// the standard library, org and simtls: never the Graph SDK, azidentity or
// engine/intune, so that the real clients are what gets tested.
package graph
