// Package intune is easgate's Intune adapter: it implements
// engine.IntuneReader over Microsoft Graph, reading Intune's managed devices
// and the transitive user members of Entra groups, authenticated as an
// application with azidentity's client-credentials flow (a client secret, or
// a certificate from a PEM or PKCS#12 file).
//
// It is the only package in the module that imports msgraph-sdk-go,
// msgraph-sdk-go-core, the kiota libraries and azidentity; nothing else may
// link it except cmd/easgate, because the SDK is large to compile and link.
// It imports engine for the domain types and ports, and never another
// adapter, the store, the console or a simulator (its tests use the Graph
// simulator, engine/sim/graph).
//
// Graph and the authority are configuration (graph_url, authority_url), so
// the public cloud, GCC High, 21Vianet and the simulator are all reached the
// same way; the authentication provider's allowed hosts come from graph_url,
// and a guard under the middleware refuses any request without a token
// (the provider would otherwise send one silently).
//
// The SDK's request builders, request adapter, authentication provider and
// middleware carry every request, except that its retry handler is replaced
// by the client's request policy (policy.go): a sliding-window rate limiter
// under Graph's per-app limit, Retry-After honoured to the millisecond or as
// a date, capped, within a total budget, exponential backoff with jitter
// otherwise, and a forced token renewal when Graph refuses a cached token.
// Page bodies are decoded here with encoding/json rather than into the SDK's
// models, which turn an enum value they do not know into nil (easgate passes
// unknown values through as strings) and cost several times the time and
// memory (bench_test.go). A page that cannot be read after the retries makes
// the inventory incomplete; it never shortens it silently.
package intune
