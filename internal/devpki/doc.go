// Package devpki is the certificate authority of the development mode
// (`portvakt serve --dev`): a root CA, an issuing CA below it, and
// enterprise certificates in the two shapes Norwegian enterprise
// certificates (virksomhetssertifikat) come in: SEID 1, with the 9-digit
// organisation number in the subject serialNumber, and SEID 2, with
// organizationIdentifier "NTRNO-<org>".
//
// It owns those certificate profiles (subjects, validity, key usage, CA
// constraints) and their encodings (PEM, PKCS#12). internal/testpki builds
// its test certificates on the same profiles, adding the malformed and
// hostile ones that only tests need; the server binary links this package
// and never the test PKI.
//
// The certificates verify like issued ones, but every key lives in a file
// on a developer's machine and is made afresh for each data directory:
// nothing made here is fit to be trusted outside a demo, and no key is ever
// committed. Time is passed in by the caller.
package devpki
