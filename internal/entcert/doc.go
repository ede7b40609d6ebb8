// Package entcert verifies Norwegian enterprise certificates
// (virksomhetssertifikat) sent as the x5c header of a JWT grant (SPEC 2.1).
//
// It owns the whole certificate side of an x5c grant: decoding the header
// under size limits, verifying the chain against the configured trust
// anchors and intermediates, the leaf policy (not self-signed, not a CA,
// critical keyUsage with digitalSignature, RSA >= 2048 or EC P-256/P-384,
// allowed certificate policies), reading the organisation number (SEID 1
// serialNumber, O "<name> - <org>", SEID 2 organizationIdentifier), the
// revocation check through CRLs, and a cache of verified leaves so that the
// hot path is one SHA-256 and a map lookup.
//
// Every rejection is a *protocol.Error with code invalid_grant whose
// description tells the client developer what to fix; the private cause
// (x509 errors, fetch errors) goes only to the log. Comparing the org with
// the client's registered org is the caller's job.
package entcert
