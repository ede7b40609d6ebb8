// Package access owns the access decision of the token endpoint (docs/protocol.md):
// which scopes a client gets, for which org, with which audience and
// lifetime. Decide is a pure function over records (no I/O, no clock), so its
// rules are table-tested without HTTP or a database; the records come from an
// in-memory snapshot (package rules). CanGet and ClientMayList answer the same
// questions for the self-service API, so the two never disagree.
//
// Errors are *protocol.Error values (invalid_scope, invalid_target) whose
// descriptions name the scope, org or resource and say what to fix.
package access
