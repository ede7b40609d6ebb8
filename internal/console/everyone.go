package console

// everyoneRoutes: what every org has: its audit trail, webhooks and
// members.
func (c *Console) everyoneRoutes(rt *routes) {}
