package selfservice_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/portvakt/portvakt/internal/records"
	"github.com/portvakt/portvakt/internal/store"
)

// TestMembersEndToEnd: from a config that declares only the platform admin,
// through the token endpoint and the API over real HTTP: the platform admin
// onboards a consumer and a vendor; the consumer's admin client makes its
// first member and hands the role on; the consumer delegates
// portvakt:members.write to the vendor, whose token for the consumer reads
// the members but changes none; after the revoke the vendor's token is
// refused; the audit trail shows each change to the consumer only.
func TestMembersEndToEnd(t *testing.T) { eachEngine(t, testMembersEndToEnd) }

func testMembersEndToEnd(t *testing.T, eng engine) {
	e := newEnv(t, eng)
	admin := e.adminToken()
	_, consumer := e.onboard(admin, consumerOrg)
	vendorAdmin, vendor := e.onboard(admin, vendorOrg)
	const first, second = "first@idp.example", "second@idp.example"

	e.must(consumer, "PUT", memberPath(first), map[string]any{"roles": records.AdminScopes}, http.StatusOK, nil)
	e.must(consumer, "PUT", memberPath(second), map[string]any{"roles": []string{records.MembersWrite}}, http.StatusOK, nil)
	// With a second holder, the first may be demoted.
	e.must(consumer, "PUT", memberPath(first), map[string]any{"roles": []string{records.AuditRead}}, http.StatusOK, nil)

	// The platform admin's own members are its own: portvakt:admin is a
	// role there, and the consumer's members are not in its list.
	e.must(e.certToken(platformClient, platformOrg, "", records.AdminScope, records.MembersWrite), "PUT", memberPath("root@idp.example"),
		map[string]any{"roles": []string{records.AdminScope, records.MembersWrite}}, http.StatusOK, nil)
	var platformMembers []store.Member
	e.must(e.certToken(platformClient, platformOrg, "", records.MembersWrite), "GET", "/members", nil, http.StatusOK, &platformMembers)
	if len(platformMembers) != 1 || platformMembers[0].Subject != "root@idp.example" {
		t.Fatalf("platform members %+v", platformMembers)
	}

	// The vendor, through a delegated portvakt:members.write, reads the
	// consumer's members and changes none.
	e.must(consumer, "PUT", "/delegations/"+vendorOrg+"?scope="+records.MembersWrite, nil, http.StatusOK, nil)
	asConsumer := e.certToken(vendorAdmin, vendorOrg, consumerOrg, records.MembersWrite)
	var seen []store.Member
	e.must(asConsumer, "GET", "/members", nil, http.StatusOK, &seen)
	if len(seen) != 2 || seen[0].Subject != first || seen[1].Subject != second {
		t.Fatalf("the vendor sees %+v", seen)
	}
	wantProblem(t, e.do(asConsumer, "PUT", memberPath("vendor-person@idp.example"), map[string]any{"roles": []string{}}), http.StatusForbidden, "vendor")
	wantProblem(t, e.do(asConsumer, "DELETE", memberPath(first), nil), http.StatusForbidden, "vendor")
	// Its own token lists its own org's members: none.
	var own []store.Member
	e.must(vendor, "GET", "/members", nil, http.StatusOK, &own)
	if len(own) != 0 {
		t.Fatalf("the vendor's own members %+v", own)
	}

	// Revoked: the vendor's token for the consumer stops at once.
	e.must(consumer, "DELETE", "/delegations/"+vendorOrg+"?scope="+records.MembersWrite, nil, http.StatusNoContent, nil)
	wantProblem(t, e.do(asConsumer, "GET", "/members", nil), http.StatusForbidden)

	e.must(consumer, "DELETE", memberPath(first), nil, http.StatusNoContent, nil)

	// The consumer's trail: each member change, by its admin client.
	var page struct {
		Events []store.AuditEvent `json:"events"`
	}
	e.must(consumer, "GET", "/audit?limit=500", nil, http.StatusOK, &page)
	var got []string
	for _, ev := range page.Events {
		if ev.TargetKind == "member" {
			got = append(got, ev.Action+" "+ev.Target)
			if ev.ActorOrg != consumerOrg || !slices.Equal(ev.Orgs, []string{consumerOrg}) {
				t.Errorf("%s %s by %s, orgs %v", ev.Action, ev.Target, ev.ActorOrg, ev.Orgs)
			}
		}
	}
	want := []string{"member.delete " + first, "member.update " + first, "member.create " + second, "member.create " + first}
	if !slices.Equal(got, want) {
		t.Fatalf("member events %q, want %q", got, want)
	}
}
