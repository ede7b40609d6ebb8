package console

// vendorRoutes: the delegations a vendor received and its clients
// (console/received).
func (c *Console) vendorRoutes(rt *routes) {}
