// Package interop holds tests only: they run a real portvakt server and check
// it against clients and validators written without portvakt in mind
// (go-oidc, lestrrat-go/jwx, golang.org/x/oauth2/jwt, and panva's dpop on
// Node.js for DPoP proofs: testdata/node, installed by the test with npm ci
// from its lockfile), and against portvakt's
// own pkg/client and pkg/resource, so that a consumer or provider that never
// heard of portvakt can still use it.
package interop
