// Package events pushes the event outbox to the webhooks of the orgs each
// event concerns, as Security Event Tokens (RFC 8417) in RFC 8935 push
// deliveries, and produces the one event no API call causes,
// client.keys.expiring.
//
// # What the store does
//
// A change appends its events in its own transaction (store.Tx.AppendEvent
// inside store.Update, with Orgs = every org concerned, or store.AllOrgs
// for an event that concerns everyone such as signing_key.rotated, and
// Record = the record as the API shows it after the change, and ActorOrg =
// the org that made it); the store writes one
// pending delivery per active webhook of those orgs that subscribes to the
// event, in the same transaction, so a change that rolls back sends
// nothing. The event names are store.Event* (store.EventNames): they are
// the records' vocabulary, which internal/records validates a webhook's
// list against without importing this package.
//
// # What the worker does
//
// Worker.Run claims due deliveries (store.ClaimDeliveries: each webhook's
// oldest pending delivery, leased to this replica, so a webhook has one
// delivery out at a time and gets its events in order, and replicas
// sharing the store never send the same delivery at once), signs one SET
// per delivery (iss = the issuer, aud = the webhook URL, jti = the event's
// own id, the same on every retry, events = {EventURIPrefix + name:
// {actor_org, record}}, typ secevent+jwt) and POSTs it with Content-Type
// application/secevent+jwt and Accept application/json. Any 2xx
// acknowledges; anything else (or no reply within Timeout) is retried with
// exponential backoff and full jitter (10 s doubling to 1 h) until 24 h
// after the event, then given up. Every attempt is recorded with its status
// or error, and the newest are kept per webhook
// (store.ListDeliveryAttempts, for GET /webhooks/{id}).
//
// Delivery is bounded: at most MaxInFlight at once, Timeout per attempt,
// redirects not followed, at most MaxReply bytes of a reply read, no proxy.
// The webhook URL is checked again before every attempt
// (records.CheckWebhookURL: https, or http to a loopback host), and plain
// http is dialled only to an address that is loopback after resolution.
// Delivery is at least once: an acknowledgement lost on the way, or a
// lease that ran out, may repeat an event, which receivers drop by jti.
//
// Run also scans the clients daily (ScanKeys; one replica a day, under a
// lease: ScanKeysIfDue) for keys 30 and 7 days from expiry, each warning
// once per key across replicas (store.Event.Once),
// and purges finished deliveries and old events (Purge).
//
// # Wiring (cmd/portvakt serve)
//
//	w, err := events.New(events.Config{Issuer: cfg.Issuer, Log: log}, st, keys)
//	go w.Run(ctx)
//
// where keys is the *signer.Set (its SignType(typ, claims) signs with the
// current key and kid, as /jwk publishes it). After an Update that appended
// events, w.Notify() delivers at once instead of at the next poll (Poll,
// 2 s; other replicas find the events at theirs). Config's zero values are
// the production defaults; Owner must differ between replicas (the default
// does).
package events
