package entcert

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"strings"

	"github.com/portvakt/portvakt/internal/norid"
	"github.com/portvakt/portvakt/internal/protocol"
)

var (
	oidSerialNumber           = asn1.ObjectIdentifier{2, 5, 4, 5}
	oidOrganization           = asn1.ObjectIdentifier{2, 5, 4, 10}
	oidOrganizationIdentifier = asn1.ObjectIdentifier{2, 5, 4, 97}
)

// orgOf reads the organisation number from the leaf's subject in the order
// of docs/protocol.md. The first place that holds a number decides: an invalid
// number there is an error, not a reason to look further, so one certificate
// always names one org.
func orgOf(leaf *x509.Certificate) (string, int, error) {
	names := leaf.Subject.Names
	org, seid := "", 0
	switch {
	case firstValue(names, oidSerialNumber, is9Digits, &org):
		seid = 1
	case firstValue(names, oidOrganization, func(s string) bool { return orgFromO(s) != "" }, &org):
		org, seid = orgFromO(org), 0
	case firstValue(names, oidOrganizationIdentifier, func(s string) bool { return orgFromOrgID(s) != "" }, &org):
		org, seid = orgFromOrgID(org), 2
	default:
		return "", 0, protocol.InvalidGrant("The certificate carries no organisation number (in subject serialNumber, O or organizationIdentifier); use an enterprise certificate").
			WithCause(errors.New("no org in subject"))
	}
	if !norid.ValidOrg(org) {
		return "", 0, protocol.InvalidGrant("The certificate's organisation number %s fails the mod-11 check", org).
			WithCause(fmt.Errorf("invalid org %q", org))
	}
	return org, seid, nil
}

// firstValue stores in out the first string value of type t accepted by ok.
func firstValue(names []pkix.AttributeTypeAndValue, t asn1.ObjectIdentifier, ok func(string) bool, out *string) bool {
	for _, n := range names {
		if !n.Type.Equal(t) {
			continue
		}
		if s, isStr := n.Value.(string); isStr && ok(s) {
			*out = s
			return true
		}
	}
	return false
}

// orgFromO returns the org of an O value ending in "- <9 digits>", such as
// "ACME AS - 974760673", or "".
func orgFromO(s string) string {
	s = strings.TrimSpace(s)
	if len(s) < 10 {
		return ""
	}
	org := s[len(s)-9:]
	if !is9Digits(org) || !strings.HasSuffix(strings.TrimRight(s[:len(s)-9], " "), "-") {
		return ""
	}
	return org
}

// orgFromOrgID returns the org of an organizationIdentifier "NTRNO-<org>" or
// any "<scheme>-<org>", or "".
func orgFromOrgID(s string) string {
	i := strings.LastIndexByte(s, '-')
	if i < 0 || !is9Digits(s[i+1:]) {
		return ""
	}
	return s[i+1:]
}

func is9Digits(s string) bool {
	if len(s) != 9 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
