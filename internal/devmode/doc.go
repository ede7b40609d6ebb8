// Package devmode prepares what `portvakt serve --dev` needs on a machine with
// nothing configured: a dev PKI made with internal/devpki (root CA, issuing
// CA, enterprise certificates for the demo orgs in SEID 1 and SEID 2 style,
// as PEM and PKCS#12), a key for the demo kid client, and the ready-to-paste
// token commands. Files are made once in the data directory and reused.
package devmode
