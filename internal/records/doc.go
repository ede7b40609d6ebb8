// Package records owns the content rules that every access-rules record
// must satisfy, whoever writes it: the self-service API today, the records
// declared in the config file too. It checks text fields (names,
// descriptions), the length of lists (a client's scopes, a scope's
// audiences) and uploaded client keys (public members only, key sizes,
// kid; a PEM certificate or public key is turned into a JWK first, by
// PEMKey, which refuses private keys unread), and reports every problem as a FieldError: the field's path
// ("client_name", "scopes", "keys[2].kid") and a plain message.
//
// It is the seed of one Validate per record kind (ValidateClient,
// ValidateClientKeys, ValidateScopeName, ValidateScopeContent); rules that
// need other records (may this org list that scope?) stay with their
// callers. It knows nothing of HTTP or of the config file: callers prefix
// the paths with their own (Within) and present the problems their way.
//
// Every check bounds before it works: lengths and counts are compared
// before anything is scanned, parsed or looked up item by item, so an
// oversized input costs less than a valid one.
//
// Text rules. Names and descriptions hold no control characters (C0, DEL,
// C1), no bidirectional formatting characters (the embeddings, overrides
// and isolates U+202A-U+202E and U+2066-U+2069, and the invisible marks
// U+200E, U+200F and U+061C) and no Unicode line or paragraph separators.
// Control characters rewrite terminals and log lines; bidirectional
// characters make a name display as something else than it is (a client
// named "Skatteetaten" that is not), and the marks are invisible, so two
// names that look the same could differ; no Norwegian, Sami or English
// name needs them. A long description may hold line breaks (LF only): it is
// the prose a provider writes about its API, shown as paragraphs in the
// scope catalogue, so refusing newlines there would refuse ordinary text; a
// name or a short description is one line wherever it is shown (lists, log
// lines, audit events), so there they are refused like every other control
// character.
package records
