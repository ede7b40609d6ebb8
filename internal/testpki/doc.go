// Package testpki generates throwaway enterprise-certificate PKIs: a root CA,
// an intermediate, and leaf certificates shaped like Norwegian enterprise
// certificates (SEID 1 with the org number in subject serialNumber, SEID 2 with
// organizationIdentifier NTRNO-<org>), plus CRLs, PEM and PKCS#12 exports.
// Every test uses it so no private key is ever committed, and `serve --dev`
// uses it to make the demo PKI. Nothing here is fit to issue real certificates.
package testpki
