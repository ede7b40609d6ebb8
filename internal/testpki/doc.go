// Package testpki generates throwaway enterprise-certificate PKIs for tests:
// a root CA, an intermediate, and leaf certificates shaped like Norwegian
// enterprise certificates, plus CRLs, PEM and PKCS#12 exports. The SEID 1 and
// SEID 2 profiles are internal/devpki's; this package adds what only tests
// need: certificates in the O "<name> - <org>" style, missing or non-critical
// key usages, self-signed leaves, fake oversized keys and forged signatures
// for hostile chains. Every test uses it so no private key is ever
// committed. Only tests import it: the server binary must not link it
// (scripts/imports.sh checks).
package testpki
