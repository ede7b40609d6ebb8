// Package store defines portvakt's persistent records (docs/selfservice.md), the one
// Store interface every backend implements, its sentinel errors, and the
// read-only overlay of records declared in the config file. Implementations
// live in sub-packages and are all checked by store/conformance.
package store
