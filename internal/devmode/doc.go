// Package devmode prepares what `portvakt serve --dev` needs on a machine with
// nothing configured: a dev PKI made with internal/devpki (root CA, issuing
// CA, enterprise certificates for the demo orgs in SEID 1 and SEID 2 style,
// as PEM and PKCS#12), a key for the demo kid client, the dev mode's own
// key-encryption key (so its signing keys live in its database and rotate),
// and the ready-to-paste token commands. Files are made once in the data
// directory and reused.
package devmode
