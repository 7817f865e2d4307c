// Package graph simulates the parts of Microsoft Entra ID and Microsoft Graph
// that easgate uses, over a simulated organisation (package org): the OpenID
// Connect discovery document and the client-credentials token endpoint that
// azidentity (MSAL for Go) talks to, Intune's managed devices
// (/v1.0/deviceManagement/managedDevices) and a group's transitive user
// members (/v1.0/groups/{id}/transitiveMembers/microsoft.graph.user).
//
// It speaks the wire protocol with Graph's JSON shapes, enum spellings,
// paging (@odata.nextLink built from the host the client used, with an
// opaque $skiptoken), $select, $top, the subset of $filter Intune honours
// (an unsupported filter is silently ignored, as Graph does), Graph's error
// bodies, gzip request bodies, and 401s for a missing, unknown or expired
// bearer token. The token endpoint accepts a client secret or a client
// assertion signed with a registered certificate's key (checked as Entra
// ID checks it: thumbprint, signature, iss, sub, aud, nbf, exp); tokens
// last a configurable lifetime.
//
// Tests inject faults per path and page (429 and 503 with Retry-After,
// fractional or a date; a page that always fails; slow pages; tokens that
// expire mid-read; token endpoint failures) and read counters (requests,
// pages, objects, tokens). A cost model (cost.go), off by default, holds
// each response for the latency a real tenant would take, scaled, for
// benchmarks.
//
// It serves HTTPS with a certificate from package simtls. It imports only
// the standard library, org and simtls: never the Graph SDK, azidentity or
// engine/intune, so that the real clients are what gets tested.
package graph
