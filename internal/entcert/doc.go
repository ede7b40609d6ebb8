// Package entcert verifies Norwegian enterprise certificates
// (virksomhetssertifikat) sent as the x5c header of a JWT grant (docs/protocol.md).
//
// It owns the whole certificate side of an x5c grant: decoding the header
// under size limits, verifying the chain against the configured trust
// anchors and intermediates, the leaf policy (not self-signed, not a CA,
// critical keyUsage with digitalSignature, RSA >= 2048 or EC P-256/P-384,
// allowed certificate policies), reading the organisation number (SEID 1
// serialNumber, O "<name> - <org>", SEID 2 organizationIdentifier), the
// revocation check through CRLs, a cache of verified leaves so that the hot
// path is one SHA-256 and a map lookup, and a short cache of failed chains.
//
// Anyone who knows a certificate client's client_id can make the server
// look at a chain of their choosing, so the work a chain can cost is bounded
// before it is done, in this order: the header's size and certificate count;
// the ASN.1 elements of all certificates together (parsing costs per
// element); every key (RSA at most MaxRSABits with an odd exponent of at
// least 3, the leaf's at least 2048 bits; only RSA, P-256, P-384 and, in CA
// certificates, P-521 and Ed25519); the leaf's own checks, which need no
// signature; then the sent CA certificates are authenticated from the trust
// anchors down, so that no signature is ever verified with a key that no
// trusted CA vouched for; and only then does crypto/x509 build the chain.
// A chain that fails this way costs less than a valid request, and the same
// chain sent again is answered from the failed-chain cache (see
// Verifier.Verify). BenchmarkHostileX5C in internal/tokenendpoint measures
// it.
//
// CRL fetches (CRLChecker) share one time budget per check across all
// distribution points, end at the request's deadline, follow redirects only
// on the same host, are bounded in size and remember a failure briefly
// (and the Verifier remembers the refusal as long, so an outage costs a
// hash per repeated request); without a current CRL the certificate is
// refused (fail closed), unless CRLOptions.Grace lets the last one serve a
// while past its NextUpdate; a leaf it cleared is trusted from the cache no
// longer than that CRL holds. A CRL is read as DER or PEM whatever its
// Content-Type, must name the leaf's issuer and verify under its key.
// Policy.Observer and CRLOptions.Observer are usually one Observer.
//
// The trust anchors come from PEM files (ReadCertificateFiles): bounded in
// size and count, certificates only, and every bad file named at once.
//
// Policy.Observer is told whether each lookup of either cache hit, and
// CRLOptions.Observer how each CRL fetch went and what CRL each source
// gives (metrics); nil observes nothing.
//
// Every rejection is a *protocol.Error with code invalid_grant whose
// description tells the client developer what to fix; the private cause
// (x509 errors, fetch errors) goes only to the log. Comparing the org with
// the client's registered org is the caller's job.
package entcert
