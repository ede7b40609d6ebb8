package console

// consumerRoutes: a consumer's catalogue, access requests, clients and
// keys, and delegations to vendors (console/catalogue, console/requests,
// console/clients, console/clients/{id}, console/delegations).
func (c *Console) consumerRoutes(rt *routes) {}
