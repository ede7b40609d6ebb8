package console

import "net/http"

// homeRoutes: console/ is the org's home page, what the person can do.
func (c *Console) homeRoutes(rt *routes) {
	rt.get("{$}", func(w http.ResponseWriter, r *http.Request) error {
		return c.ok(w, r, homeView())
	})
}
