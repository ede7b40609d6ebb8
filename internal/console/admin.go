package console

// adminRoutes: the platform admin's prefixes and their owners.
func (c *Console) adminRoutes(rt *routes) {}
