// Command portvakt is a machine-to-machine OAuth2 authorization server
// modelled on Maskinporten: `serve` runs it (with --dev, on a generated dev
// PKI and demo records), `migrate` manages its schema, `token` fetches a
// token as a client, `admin` drives the self-service API and `version`
// prints the build. Everything is wired in app.go, explicitly: each package
// gets its own small config and its dependencies as arguments.
package main
