package console

import (
	"net/http"
	"strings"

	"github.com/portvakt/portvakt/internal/manage"
	"github.com/portvakt/portvakt/internal/store"
)

// adminRoutes: the platform admin's prefixes and their owners.
func (c *Console) adminRoutes(rt *routes) {
	rt.get("prefixes", c.prefixesPage)
	rt.post("prefixes", c.assignPrefix)
}

// prefixesView is the prefixes page: every prefix and its owner, and the
// form that assigns one.
type prefixesView struct {
	Prefixes      []store.Prefix
	Prefix, Owner string
	Errors        formErrors
	Notice        string
}

func (c *Console) prefixesView(r *http.Request) (prefixesView, error) {
	ps, err := c.core.ListPrefixes(r.Context(), actor(r), store.Page{Limit: store.MaxPageLimit})
	return prefixesView{Prefixes: ps}, err
}

func (c *Console) prefixesPage(w http.ResponseWriter, r *http.Request) error {
	v, err := c.prefixesView(r)
	if err != nil {
		return err
	}
	v.Notice = notice(r)
	return c.ok(w, r, prefixesPage(v))
}

// assignPrefix gives a prefix to an org: creating it, or moving it while
// it has no scopes.
func (c *Console) assignPrefix(w http.ResponseWriter, r *http.Request) error {
	prefix, owner := strings.TrimSpace(r.PostFormValue("prefix")), strings.TrimSpace(r.PostFormValue("owner_org"))
	_, err := c.core.AssignPrefix(r.Context(), actor(r), prefix, manage.PrefixInput{OwnerOrg: owner})
	if err == nil {
		return c.redirect(w, r, "prefixes?done=assigned")
	}
	fe, ok := formErrorsOf(err, "prefix", "owner_org")
	if !ok {
		return err
	}
	v, verr := c.prefixesView(r)
	if verr != nil {
		return verr
	}
	v.Prefix, v.Owner, v.Errors = prefix, owner, fe
	return c.refused(w, r, prefixesPage(v))
}
