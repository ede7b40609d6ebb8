package manage

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/portvakt/portvakt/internal/access"
	"github.com/portvakt/portvakt/internal/records"
	"github.com/portvakt/portvakt/internal/store"
)

// Delegated administration is bounded (docs/selfservice.md): a vendor acting for a
// consumer through a delegated admin scope (caller.Supplier != "") never
// ends up with more power than the consumer delegated to it. The rules:
//
//   - It acts only while the delegation it acts through is ACTIVE: every
//     request checks it, and every write checks it again inside its
//     transaction, so a bearer token issued before the consumer revoked
//     stops working at once.
//   - A client it creates is managed_by the vendor; keys it uploads are
//     uploaded_by the vendor. managed_by never changes.
//   - The scopes it may add to any of the consumer's clients, and the
//     scopes a managed client may list whoever edits it, are those the
//     consumer could delegate (it can get the scope itself and the scope is
//     delegable here), never a portvakt admin scope. A token from a managed
//     client is indistinguishable from the consumer's own, so anything more
//     (a non-delegable scope, an admin scope, a scope delegated *to* the
//     consumer) would be more than the consumer can give a vendor. For the
//     same reason a managed client never acts for a third org (consumer_org;
//     the token endpoint refuses it, internal/access).
//   - It uploads keys only to the clients it manages, and never replaces or
//     removes a key it did not upload.
//   - It leaves alone the clients through which the consumer administers
//     itself (those listing a portvakt admin scope): deactivating them
//     would lock the consumer out of revoking the vendor.
//   - It never reactivates a client (the consumer may have deactivated it,
//     or revoking the delegation did), delegates nothing to itself, grants
//     itself no access to the consumer's scopes (a provider's vendor), and
//     delegates no portvakt admin scope (it would hand its power on to an
//     org of its choosing, its own included).
//   - When the consumer revokes its portvakt:clients.write delegation, in
//     the same transaction every key the vendor uploaded to the consumer's
//     clients is removed and every client it manages for the consumer is
//     deactivated, each change an audit event both orgs see.
//   - It reads the consumer's members but adds, changes or removes none:
//     a member outlives the delegation (members.go).

// managedScopeRefusal says why a vendor may not add scope name to a client
// of consumer, or why a client managed by a vendor may not list it; ""
// when it may.
func managedScopeRefusal(recs access.Records, issuer, consumer, name string) string {
	if records.IsAdminScope(name) {
		return fmt.Sprintf("scope %s is a %s admin scope: a vendor cannot put it on organisation %s's clients, and a client a vendor manages cannot list it", name, records.BuiltinPrefix, consumer)
	}
	if why := delegationRefusal(recs, issuer, consumer, name); why != "" {
		return fmt.Sprintf("a client a vendor manages or edits for organisation %s may list only scopes that organisation could delegate: %s", consumer, why)
	}
	return ""
}

// managedScopeErrors checks the scopes of a client body that a vendor writes,
// or that a managed client will list: each scope not in keep (already on the
// client) must pass managedScopeRefusal. What clientBody.validate reports
// (a duplicate, a scope the consumer's clients cannot list at all) is not
// reported twice.
func managedScopeErrors(recs access.SupplierRecords, issuer, consumer string, scopes, keep []string) []FieldError {
	var errs []FieldError
	for i, s := range scopes {
		if slices.Index(scopes, s) < i || slices.Contains(keep, s) || !access.ClientMayList(recs, s, consumer) {
			continue
		}
		if why := managedScopeRefusal(recs, issuer, consumer, s); why != "" {
			errs = append(errs, field(fmt.Sprintf("scopes[%d]", i), "%s", why))
		}
	}
	return errs
}

// adminClientRefusal refuses a delegated caller any change to a client that
// lists a portvakt admin scope: one the consumer administers itself with.
func adminClientRefusal(a *Actor, cl store.Client) error {
	if a.Supplier == "" || !slices.ContainsFunc(cl.Scopes, records.IsAdminScope) {
		return nil
	}
	return forbidden("client %s lists %s admin scopes: organisation %s administers itself with it, and a vendor cannot change or deactivate it", cl.ClientID, records.BuiltinPrefix, a.Org)
}

// vendorKeysRefusal says why the delegated caller c may not change the keys
// of cl to next (nil: remove them all), or nil when it may: it must manage
// the client, and every key someone else uploaded must stay, same kid and
// same material.
func vendorKeysRefusal(a *Actor, cl store.Client, next []store.ClientKey) error {
	if a.Supplier == "" {
		return nil
	}
	if cl.ManagedBy != a.Supplier {
		return forbidden("client %s is not managed by your organisation %s: a vendor uploads and removes keys only of the clients it created for organisation %s", cl.ClientID, a.Supplier, a.Org)
	}
	var kept []string
	for _, old := range cl.Keys {
		if old.UploadedBy == a.Supplier {
			continue
		}
		if !slices.ContainsFunc(next, func(k store.ClientKey) bool { return k.KID == old.KID && sameKey(k.JWK, old.JWK) }) {
			kept = append(kept, old.KID)
		}
	}
	if len(kept) > 0 {
		return forbidden("organisation %s uploaded the keys %s of client %s: a vendor never replaces or removes a key it did not upload; send them unchanged with your own",
			cl.ClientOrgno, strings.Join(kept, ", "), cl.ClientID)
	}
	return nil
}

// revokeVendorClients takes back what supplier put in place for consumer,
// inside the transaction that revokes its portvakt:clients.write delegation:
// its keys on the consumer's clients are removed, and the clients it manages
// are deactivated. It returns one change per step, for the audit log.
func revokeVendorClients(ctx context.Context, tx store.Tx, consumer, supplier string, now time.Time) ([]change, error) {
	// The consumer's clients, page by page: the walk costs what the
	// consumer has, not what the store holds.
	var all []store.Client
	for p := (store.Page{Limit: store.MaxPageLimit}); ; {
		got, err := tx.PageClients(ctx, store.ClientFilter{ClientOrgno: consumer}, p)
		if err != nil {
			return nil, err
		}
		all = append(all, got...)
		if len(got) < p.Size() {
			break
		}
		p.After = got[len(got)-1].Key()
	}
	var out []change
	orgs := []string{consumer, supplier}
	for _, cl := range all {
		after := cl
		after.Keys = slices.DeleteFunc(slices.Clone(cl.Keys), func(k store.ClientKey) bool { return k.UploadedBy == supplier })
		keysGone := len(after.Keys) != len(cl.Keys)
		deactivate := cl.ManagedBy == supplier && cl.Active
		if !keysGone && !deactivate {
			continue
		}
		after.Active = cl.Active && !deactivate
		after.LastUpdated = now
		if err := tx.UpdateClient(ctx, after); err != nil {
			return nil, err
		}
		if keysGone {
			out = append(out, change{action: "client.keys.revoke", kind: "client", target: cl.ClientID, orgs: orgs,
				before: KeySet(cl), after: KeySet(after)})
		}
		if deactivate {
			// The second event starts where the first left the client.
			mid := cl
			mid.Keys = after.Keys
			out = append(out, change{action: "client.deactivate", event: store.EventClientDeactivated, kind: "client", target: cl.ClientID, orgs: orgs,
				before: mid, after: after})
		}
	}
	return out, nil
}
