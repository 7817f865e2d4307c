// Package intune is easgate's Intune adapter: it implements
// engine.IntuneReader over Microsoft Graph, reading Intune's managed devices
// and the transitive user members of Entra groups, authenticated as an
// application with azidentity's client-credentials flow.
//
// It is the only package in the module that imports msgraph-sdk-go,
// msgraph-sdk-go-core, the kiota libraries and azidentity; nothing else may
// link it except cmd/easgate, because the SDK is large to compile and link.
// It imports engine for the domain types and port, and never another
// adapter, the store, the console or a simulator (its tests use the Graph
// simulator, engine/sim/graph).
//
// The SDK's request builders, request adapter, authentication provider and
// middleware (retry, redirect, telemetry) carry every request; the page
// bodies are decoded here with encoding/json rather than into the SDK's
// models, which turn an enum value they do not know into nil (easgate passes
// unknown values through as strings) and cost more to build.
package intune
