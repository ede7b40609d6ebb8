// Package norid validates the Norwegian identifiers that portvakt handles: the
// 9-digit organisation number (organisasjonsnummer) and the 11-digit national
// identity number (fødselsnummer / D-nummer), both under their mod-11 checks.
package norid
