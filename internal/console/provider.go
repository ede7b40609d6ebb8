package console

// providerRoutes: a provider's scopes, allow-lists, access-request inbox
// and the tokens issued for its scopes.
func (c *Console) providerRoutes(rt *routes) {}
