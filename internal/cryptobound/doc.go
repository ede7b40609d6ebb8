// Package cryptobound measures the crypto bound of the token endpoint: how
// many tokens per second this machine's cores can pay the server's crypto
// for, that is one RSA-2048 PKCS#1 v1.5 SHA-256 sign (the access token,
// RS256) and one RS256 verify (the assertion) per token, on all cores.
//
// The in-process benchmark (internal/tokenendpoint) and the load tool
// (cmd/portvakt-bench) both set what the server reaches against it. Both
// take several short samples between rounds of load and pool them, because
// a shared machine's speed drifts within seconds: a bound measured once
// compares the server with a different machine.
package cryptobound
