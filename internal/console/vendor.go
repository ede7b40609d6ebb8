package console

import (
	"net/http"
	"slices"
	"strings"

	"github.com/portvakt/portvakt/internal/store"
)

// vendorRoutes: the delegations a vendor received and its clients
// (console/received).
func (c *Console) vendorRoutes(rt *routes) {
	rt.get("received", c.receivedPage)
}

// customer is an org that delegated scopes to the vendor.
type customer struct {
	Org         string
	Delegations []store.Delegation
}

type receivedData struct {
	Customers []customer
	Inactive  bool
	// Clients are the vendor's own clients; nil when the person may not
	// read them.
	Clients []store.Client
}

func (c *Console) receivedPage(w http.ResponseWriter, r *http.Request) error {
	a := actor(r)
	d := receivedData{Inactive: r.URL.Query().Get("inactive") == "true"}
	all, err := lookupAll(func(p store.Page) ([]store.Delegation, error) {
		return c.core.ListDelegations(r.Context(), a, d.Inactive, p)
	}, lookupLimit, maxLookupRows)
	if err != nil {
		return err
	}
	for _, dl := range all {
		if dl.SupplierOrgno != a.Org {
			continue // given, not received: the delegations page shows those
		}
		i := slices.IndexFunc(d.Customers, func(cu customer) bool { return cu.Org == dl.ConsumerOrgno })
		if i < 0 {
			d.Customers = append(d.Customers, customer{Org: dl.ConsumerOrgno})
			i = len(d.Customers) - 1
		}
		d.Customers[i].Delegations = append(d.Customers[i].Delegations, dl)
	}
	slices.SortFunc(d.Customers, func(x, y customer) int { return strings.Compare(x.Org, y.Org) })
	clients, err := lookupAll(func(p store.Page) ([]store.Client, error) {
		return c.core.ListClients(r.Context(), a, false, p)
	}, lookupLimit, maxLookupRows)
	switch {
	case lacksRole(err):
	case err != nil:
		return err
	default:
		d.Clients = clients
	}
	return c.ok(w, r, receivedView(d))
}
