package console

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portvakt/portvakt/internal/manage"
	"github.com/portvakt/portvakt/internal/records"
	"github.com/portvakt/portvakt/internal/store"
)

// consumerRoutes: a consumer's catalogue, access requests, clients and
// keys, and delegations to vendors (console/catalogue, console/requests,
// console/clients, console/clients/{id}, console/delegations).
func (c *Console) consumerRoutes(rt *routes) {
	rt.get("catalogue", c.cataloguePage)
	rt.get("requests", c.requestsPage)
	rt.post("requests", c.requestAccess)
	rt.post("requests/withdraw", c.withdrawRequest)
	rt.get("clients", c.clientsPage)
	rt.post("clients", c.createClient)
	rt.get("clients/{id}", c.clientPage)
	rt.post("clients/{id}", c.updateClient)
	rt.post("clients/{id}/deactivate", c.deactivateClient)
	rt.post("clients/{id}/keys", c.uploadKey)
	rt.post("clients/{id}/keys/remove", c.removeKey)
	rt.get("delegations", c.delegationsPage)
	rt.post("delegations", c.giveDelegation)
	rt.post("delegations/revoke", c.revokeDelegation)
}

// lookupLimit is the store page in which lookupAll reads the lists a page
// needs whole (the org's access rows for the catalogue's states, its
// delegations and clients to group them): the largest the API serves.
const lookupLimit = store.MaxPageLimit

// maxLookupRows bounds what lookupAll reads: more rows than the orgs of a
// country's platform. An org past it gets a clear refusal, not a list cut
// short without a word.
const maxLookupRows = 20 * lookupLimit

// errTooMany refuses a page whose lookup passed maxLookupRows.
var errTooMany = &consoleError{http.StatusUnprocessableEntity, "Too many to show",
	fmt.Sprintf("This page would list more than %d records. Use the self-service API, which pages through them.", maxLookupRows)}

// lookupAll reads every row of a list through list, a page of size rows
// at a time, and refuses (errTooMany) past max rows.
func lookupAll[T interface{ Key() []string }](list func(store.Page) ([]T, error), size, max int) ([]T, error) {
	var all []T
	p := store.Page{Limit: size}
	for {
		rows, err := list(p)
		if err != nil {
			return nil, err
		}
		all = append(all, rows...)
		if len(rows) < size {
			return all, nil
		}
		if len(all) >= max {
			return nil, errTooMany
		}
		p.After = rows[len(rows)-1].Key()
	}
}

// after is the page of a list that continues after the key in the query's
// "after" parameter (a name or id: the first part of the record's key). A
// key longer than any name is no key: the list starts from the top.
func after(r *http.Request, rest ...string) store.Page {
	p := store.Page{Limit: listPage}
	if a := r.URL.Query().Get("after"); a != "" && len(a) <= records.MaxScopeName {
		p.After = append([]string{a}, rest...)
	}
	return p
}

// nextAfter is the "after" of the page following one that returned n rows
// ending with last, or "" when it was the last page.
func nextAfter(n int, last string) string {
	if n < listPage {
		return ""
	}
	return last
}

// lacksRole reports whether err is the core's refusal for want of a role:
// a part of a page that needs a role the person does not hold is left out
// rather than failing the page.
func lacksRole(err error) bool {
	var me *manage.Error
	return errors.As(err, &me) && me.Kind == manage.InsufficientScope
}

// --- catalogue ---

type catalogueData struct {
	Query  string
	Scopes []store.Scope
	// States are the org's own access rows' states by scope; nil when the
	// person's roles do not let them read them.
	States map[string]string
	Next   string
	Err    formErrors
}

func (c *Console) cataloguePage(w http.ResponseWriter, r *http.Request) error {
	a := actor(r)
	d := catalogueData{Query: r.URL.Query().Get("q")}
	var err error
	d.Scopes, err = c.core.Catalogue(r.Context(), a, d.Query, after(r))
	if fe, ok := formErrorsOf(err, "q"); ok {
		d.Err = fe
		return c.refused(w, r, catalogueView(d))
	}
	if err != nil {
		return err
	}
	if len(d.Scopes) > 0 {
		d.Next = nextAfter(len(d.Scopes), d.Scopes[len(d.Scopes)-1].Name)
	}
	rows, err := lookupAll(func(p store.Page) ([]store.Access, error) {
		return c.core.MyAccess(r.Context(), a, manage.AccessQuery{Inactive: true}, p)
	}, lookupLimit, maxLookupRows)
	switch {
	case lacksRole(err):
	case err != nil:
		return err
	default:
		d.States = make(map[string]string, len(rows))
		for _, row := range rows {
			d.States[row.Scope] = row.State
		}
	}
	return c.ok(w, r, catalogueView(d))
}

// --- access requests ---

type requestsData struct {
	Rows []store.Access
	Next string
	// Scope and Reason fill the form asking for access.
	Scope, Reason string
	Err           formErrors
	// Banner is the refusal of a withdrawal.
	Banner formErrors
}

func (c *Console) requestsPage(w http.ResponseWriter, r *http.Request) error {
	d := requestsData{Scope: r.URL.Query().Get("scope")}
	if err := c.loadRequests(r, &d); err != nil {
		return err
	}
	return c.ok(w, r, requestsView(d))
}

// loadRequests reads the org's access rows in every state: what it asked
// for and what came of it.
func (c *Console) loadRequests(r *http.Request, d *requestsData) error {
	a := actor(r)
	rows, err := c.core.MyAccess(r.Context(), a, manage.AccessQuery{Inactive: true}, after(r, a.Org))
	if lacksRole(err) {
		return nil // the form still works for a person who may only ask
	}
	if err != nil {
		return err
	}
	d.Rows = rows
	if len(rows) > 0 {
		d.Next = nextAfter(len(rows), rows[len(rows)-1].Scope)
	}
	return nil
}

func (c *Console) requestAccess(w http.ResponseWriter, r *http.Request) error {
	d := requestsData{Scope: strings.TrimSpace(r.PostFormValue("scope")), Reason: r.PostFormValue("reason")}
	_, err := c.core.RequestAccess(r.Context(), actor(r), d.Scope, manage.AccessInput{Reason: d.Reason})
	if err == nil {
		return c.redirect(w, r, "requests")
	}
	fe, ok := formErrorsOf(err, "scope", "reason")
	var me *manage.Error
	if !ok && errors.As(err, &me) && me.Kind == manage.NotFound {
		// The core's words name only what the person typed: no public
		// active scope of that name.
		fe, ok = formErrors{Fields: map[string]string{"scope": me.Detail}}, true
	}
	if !ok {
		return err
	}
	d.Err = fe
	if err := c.loadRequests(r, &d); err != nil {
		return err
	}
	return c.refused(w, r, requestsView(d))
}

func (c *Console) withdrawRequest(w http.ResponseWriter, r *http.Request) error {
	_, err := c.core.WithdrawRequest(r.Context(), actor(r), r.PostFormValue("scope"))
	if err == nil {
		return c.redirect(w, r, "requests")
	}
	fe, ok := formErrorsOf(err)
	if !ok {
		return err
	}
	d := requestsData{Banner: fe}
	if err := c.loadRequests(r, &d); err != nil {
		return err
	}
	return c.refused(w, r, requestsView(d))
}

// --- clients ---

// clientForm is the client form's fields as typed.
type clientForm struct {
	Name, Description, Scopes, Lifetime string
}

// clientInputs are the client form's inputs, named as the core names them.
var clientInputs = []string{"client_name", "description", "scopes", "access_token_lifetime"}

func clientFormOf(cl store.Client) clientForm {
	return clientForm{Name: cl.ClientName, Description: cl.Description, Scopes: strings.Join(cl.Scopes, "\n"),
		Lifetime: strconv.Itoa(cl.AccessTokenLifetime)}
}

func readClientForm(r *http.Request) clientForm {
	return clientForm{Name: r.PostFormValue("client_name"), Description: r.PostFormValue("description"),
		Scopes: r.PostFormValue("scopes"), Lifetime: r.PostFormValue("access_token_lifetime")}
}

// input is the form as the core's input. A lifetime that is not a whole
// number is the form's own problem: the core never sees the text.
func (f clientForm) input() (manage.ClientInput, formErrors) {
	in := manage.ClientInput{ClientName: f.Name, Description: f.Description, Scopes: splitScopes(f.Scopes)}
	lt := strings.TrimSpace(f.Lifetime)
	if lt == "" {
		return in, formErrors{}
	}
	n, err := strconv.Atoi(lt)
	if err != nil {
		return in, formErrors{Fields: map[string]string{"access_token_lifetime": "must be a whole number of seconds (0 = no cap)"}}
	}
	in.AccessTokenLifetime = n
	return in, formErrors{}
}

// splitScopes reads the scopes field: names separated by spaces, commas or
// line breaks. Bounded by the form's size; the core bounds the count.
func splitScopes(s string) []string {
	out := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
	if out == nil {
		return []string{}
	}
	return out
}

type clientsData struct {
	Clients  []store.Client
	Inactive bool
	Next     string
	Form     clientForm
	Err      formErrors
	// Access are the scopes the org has access to (approved), offered as a
	// hint; nil when the person may not read them.
	Access []string
}

func (c *Console) clientsPage(w http.ResponseWriter, r *http.Request) error {
	d := clientsData{Form: clientForm{Lifetime: "0"}}
	if err := c.loadClients(r, &d); err != nil {
		return err
	}
	return c.ok(w, r, clientsView(d))
}

func (c *Console) loadClients(r *http.Request, d *clientsData) error {
	a := actor(r)
	d.Inactive = r.URL.Query().Get("inactive") == "true"
	var err error
	if d.Clients, err = c.core.ListClients(r.Context(), a, d.Inactive, after(r)); err != nil {
		return err
	}
	if len(d.Clients) > 0 {
		d.Next = nextAfter(len(d.Clients), d.Clients[len(d.Clients)-1].ClientID)
	}
	rows, err := lookupAll(func(p store.Page) ([]store.Access, error) {
		return c.core.MyAccess(r.Context(), a, manage.AccessQuery{}, p)
	}, lookupLimit, maxLookupRows)
	switch {
	case lacksRole(err):
	case err != nil:
		return err
	default:
		d.Access = []string{}
		for _, row := range rows {
			d.Access = append(d.Access, row.Scope)
		}
	}
	return nil
}

func (c *Console) createClient(w http.ResponseWriter, r *http.Request) error {
	d := clientsData{Form: readClientForm(r)}
	in, fe := d.Form.input()
	if !fe.Any() {
		cl, err := c.core.CreateClient(r.Context(), actor(r), in)
		if err == nil {
			return c.redirect(w, r, "clients/"+url.PathEscape(cl.ClientID))
		}
		var ok bool
		if fe, ok = formErrorsOf(err, clientInputs...); !ok {
			return err
		}
	}
	d.Err = fe
	if err := c.loadClients(r, &d); err != nil {
		return err
	}
	return c.refused(w, r, clientsView(d))
}

// keyRow is a client key as the page shows it.
type keyRow struct {
	KID, Type  string
	UploadedBy string
	Created    time.Time
	Expires    time.Time
	// DaysLeft is how many whole days the key has left (negative: expired).
	DaysLeft int
}

type clientData struct {
	Client store.Client
	Keys   []keyRow
	Form   clientForm
	Err    formErrors
	// KID, JWK and PEM fill the key upload forms; KeyErr their problems.
	KID, JWK, PEM string
	KeyErr        formErrors
}

func (c *Console) keyRows(cl store.Client) []keyRow {
	now := c.cfg.Now()
	out := make([]keyRow, 0, len(cl.Keys))
	for _, k := range cl.Keys {
		row := keyRow{KID: k.KID, Type: keyType(k.JWK), UploadedBy: k.UploadedBy, Created: k.Created, Expires: k.Expires,
			DaysLeft: records.DaysLeft(k.Expires, now)}
		if row.DaysLeft == 0 {
			row.DaysLeft = -1
		}
		if row.UploadedBy == "" {
			row.UploadedBy = cl.ClientOrgno
		}
		out = append(out, row)
	}
	return out
}

// keyType names a stored JWK's kind: "RSA 2048", "EC P-256".
func keyType(raw json.RawMessage) string {
	var k struct{ Kty, Crv, N string }
	if json.Unmarshal(raw, &k) != nil {
		return "?"
	}
	if k.Kty == "RSA" {
		if b, err := base64.RawURLEncoding.DecodeString(k.N); err == nil {
			return fmt.Sprintf("RSA %d", new(big.Int).SetBytes(b).BitLen())
		}
		return "RSA"
	}
	return strings.TrimSpace(k.Kty + " " + k.Crv)
}

func (c *Console) clientPage(w http.ResponseWriter, r *http.Request) error {
	cl, err := c.core.GetClient(r.Context(), actor(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	return c.ok(w, r, clientView(clientData{Client: cl, Keys: c.keyRows(cl), Form: clientFormOf(cl)}))
}

func (c *Console) updateClient(w http.ResponseWriter, r *http.Request) error {
	a, id := actor(r), r.PathValue("id")
	form := readClientForm(r)
	in, fe := form.input()
	if !fe.Any() {
		_, err := c.core.UpdateClient(r.Context(), a, id, in)
		if err == nil {
			return c.redirect(w, r, "clients/"+url.PathEscape(id))
		}
		var ok bool
		if fe, ok = formErrorsOf(err, clientInputs...); !ok {
			return err
		}
	}
	cl, err := c.core.GetClient(r.Context(), a, id)
	if err != nil {
		return err
	}
	return c.refused(w, r, clientView(clientData{Client: cl, Keys: c.keyRows(cl), Form: form, Err: fe}))
}

func (c *Console) deactivateClient(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if err := c.core.DeactivateClient(r.Context(), actor(r), id); err != nil {
		return err
	}
	return c.redirect(w, r, "clients/"+url.PathEscape(id))
}

// keyFields are the key upload forms' inputs.
var keyFields = []string{"jwk", "pem", "kid"}

// uploadKey adds one key to a client's set: a JWK pasted, or a PEM
// certificate or public key pasted or sent as a file (records.PEMKey, the
// conversion the CLI uses too). The set is replaced through the core with
// the keys it holds plus the new one, so the core's rules (at most five,
// public only, sizes, kids unique) decide, and the keys already there keep
// their upload time, expiry and uploader.
func (c *Console) uploadKey(w http.ResponseWriter, r *http.Request) error {
	a, id := actor(r), r.PathValue("id")
	// Read the whole form first, in memory (the body is bounded): a body
	// over the bound fails here, as "too large", rather than as fields
	// that seem missing.
	if err := r.ParseMultipartForm(maxBody); err != nil && !errors.Is(err, http.ErrNotMultipart) {
		return err
	}
	cl, err := c.core.GetClient(r.Context(), a, id)
	if err != nil {
		return err
	}
	d := clientData{Client: cl, Form: clientFormOf(cl), KID: strings.TrimSpace(r.PostFormValue("kid")),
		JWK: strings.TrimSpace(r.PostFormValue("jwk"))}
	field := "jwk"
	var add []json.RawMessage
	pemText, fe := readPEM(r)
	switch {
	case fe.Any():
		field = "pem"
	case d.JWK != "" && pemText != nil:
		fe = formErrors{Banner: []string{"Send either a JWK or a PEM certificate or public key, not both."}}
	case pemText != nil:
		field = "pem"
		if !bytes.Contains(pemText, []byte("PRIVATE KEY")) && len(pemText) <= records.MaxPEM {
			d.PEM = string(pemText) // shown again only when it is a public text
		}
		jwk, errs := records.PEMKey("pem", pemText, d.KID)
		if len(errs) > 0 {
			fe = formErrors{Fields: map[string]string{"pem": errs[0].Detail}}
			break
		}
		add = []json.RawMessage{jwk}
	case d.JWK != "":
		add, fe = readJWK(d.JWK, d.KID)
	default:
		fe = formErrors{Banner: []string{"Paste a JWK, or paste or choose a PEM certificate or public key."}}
	}
	if !fe.Any() {
		raw := make([]json.RawMessage, 0, len(cl.Keys)+len(add))
		for _, k := range cl.Keys {
			raw = append(raw, k.JWK)
		}
		_, err := c.core.ReplaceKeys(r.Context(), a, id, append(raw, add...))
		if err == nil {
			return c.redirect(w, r, "clients/"+url.PathEscape(id))
		}
		var ok bool
		if fe, ok = formErrorsOf(keyErrorsAs(err, field, len(cl.Keys)), keyFields...); !ok {
			return err
		}
	}
	// A refused JWK may hold private members: it is never echoed.
	d.JWK, d.Keys, d.KeyErr = "", c.keyRows(cl), fe
	return c.refused(w, r, clientView(d))
}

// readPEM is the PEM text of the upload form: the file chosen, or else
// the text pasted; nil when neither was sent. A file is read up to one
// byte over records.MaxPEM, so that PEMKey refuses it by its size.
func readPEM(r *http.Request) ([]byte, formErrors) {
	if f, _, err := r.FormFile("pem_file"); err == nil {
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, records.MaxPEM+1))
		if err != nil {
			return nil, formErrors{Fields: map[string]string{"pem": "the file could not be read"}}
		}
		if len(b) > 0 {
			return b, formErrors{}
		}
	}
	if s := strings.TrimSpace(r.PostFormValue("pem")); s != "" {
		return []byte(s), formErrors{}
	}
	return nil, formErrors{}
}

// readJWK reads the JWK pasted: one key, or a key set whose keys are all
// added. A key without a kid gets the one typed in the form.
func readJWK(text, kid string) ([]json.RawMessage, formErrors) {
	bad := func(msg string) ([]json.RawMessage, formErrors) {
		return nil, formErrors{Fields: map[string]string{"jwk": msg}}
	}
	if len(text) > records.MaxPEM {
		return bad(fmt.Sprintf("is %d bytes; a JWK is at most %d bytes (64 KiB)", len(text), records.MaxPEM))
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal([]byte(text), &set); err != nil {
		return bad("is not a JSON object: paste one JWK ({\"kty\":...}) or a key set ({\"keys\":[...]})")
	}
	if set.Keys == nil {
		set.Keys = []json.RawMessage{json.RawMessage(text)}
	}
	if kid == "" {
		return set.Keys, formErrors{}
	}
	out := make([]json.RawMessage, len(set.Keys))
	for i, k := range set.Keys {
		out[i] = k
		var m map[string]json.RawMessage
		if json.Unmarshal(k, &m) != nil {
			continue // the core says what is wrong with it
		}
		if _, ok := m["kid"]; !ok {
			m["kid"], _ = json.Marshal(kid)
			if b, err := json.Marshal(m); err == nil {
				out[i] = b
			}
		}
	}
	return out, formErrors{}
}

// keyErrorsAs renames the core's problems with the new keys of a set
// (keys[n].kid, with n at or after the kept keys) to the upload field, so
// that they show next to the input the person used; a problem with the
// count goes there too.
func keyErrorsAs(err error, field string, kept int) error {
	var me *manage.Error
	if !errors.As(err, &me) || me.Kind != manage.Invalid {
		return err
	}
	out := *me
	out.Fields = make([]manage.FieldError, len(me.Fields))
	for i, f := range me.Fields {
		out.Fields[i] = f
		rest, ok := strings.CutPrefix(f.Field, "keys")
		if !ok {
			continue
		}
		detail := f.Detail
		if idx, member, found := strings.Cut(strings.TrimPrefix(rest, "["), "]"); found {
			n, _ := strconv.Atoi(idx)
			if n < kept {
				continue // a kept key: shown as the core names it
			}
			if member = strings.TrimPrefix(member, "."); member != "" {
				detail = member + ": " + detail
			}
		}
		out.Fields[i] = manage.FieldError{Field: field, Detail: detail}
	}
	return &out
}

func (c *Console) removeKey(w http.ResponseWriter, r *http.Request) error {
	a, id, kid := actor(r), r.PathValue("id"), r.PostFormValue("kid")
	cl, err := c.core.GetClient(r.Context(), a, id)
	if err != nil {
		return err
	}
	keep := []json.RawMessage{}
	for _, k := range cl.Keys {
		if k.KID != kid {
			keep = append(keep, k.JWK)
		}
	}
	if len(keep) == len(cl.Keys) {
		return errNotFound
	}
	if _, err := c.core.ReplaceKeys(r.Context(), a, id, keep); err != nil {
		return err
	}
	return c.redirect(w, r, "clients/"+url.PathEscape(id))
}

// --- delegations ---

type delegationsData struct {
	Given    []store.Delegation
	Inactive bool
	// Scope and Supplier fill the form giving a delegation.
	Scope, Supplier string
	Err             formErrors
	// Managed are the vendors that manage the org's clients, with the
	// clients; nil when the person may not read clients.
	Managed []managedBy
}

// managedBy is a vendor managing some of the org's clients.
type managedBy struct {
	Vendor  string
	Clients []store.Client
}

func (c *Console) delegationsPage(w http.ResponseWriter, r *http.Request) error {
	var d delegationsData
	if err := c.loadDelegations(r, &d); err != nil {
		return err
	}
	return c.ok(w, r, delegationsView(d))
}

func (c *Console) loadDelegations(r *http.Request, d *delegationsData) error {
	a := actor(r)
	d.Inactive = r.URL.Query().Get("inactive") == "true"
	all, err := lookupAll(func(p store.Page) ([]store.Delegation, error) {
		return c.core.ListDelegations(r.Context(), a, d.Inactive, p)
	}, lookupLimit, maxLookupRows)
	if err != nil {
		return err
	}
	for _, dl := range all {
		if dl.ConsumerOrgno == a.Org {
			d.Given = append(d.Given, dl)
		}
	}
	clients, err := lookupAll(func(p store.Page) ([]store.Client, error) {
		return c.core.ListClients(r.Context(), a, true, p)
	}, lookupLimit, maxLookupRows)
	switch {
	case lacksRole(err):
		return nil
	case err != nil:
		return err
	}
	d.Managed = []managedBy{}
	for _, cl := range clients {
		if cl.ManagedBy == "" {
			continue
		}
		i := slices.IndexFunc(d.Managed, func(m managedBy) bool { return m.Vendor == cl.ManagedBy })
		if i < 0 {
			d.Managed = append(d.Managed, managedBy{Vendor: cl.ManagedBy})
			i = len(d.Managed) - 1
		}
		d.Managed[i].Clients = append(d.Managed[i].Clients, cl)
	}
	slices.SortFunc(d.Managed, func(x, y managedBy) int { return strings.Compare(x.Vendor, y.Vendor) })
	return nil
}

func (c *Console) giveDelegation(w http.ResponseWriter, r *http.Request) error {
	d := delegationsData{Scope: strings.TrimSpace(r.PostFormValue("scope")), Supplier: strings.TrimSpace(r.PostFormValue("supplier_org"))}
	_, err := c.core.GiveDelegation(r.Context(), actor(r), d.Scope, d.Supplier)
	if err == nil {
		return c.redirect(w, r, "delegations")
	}
	fe, ok := formErrorsOf(err, "scope", "supplier_org")
	if !ok {
		return err
	}
	d.Err = fe
	if err := c.loadDelegations(r, &d); err != nil {
		return err
	}
	return c.refused(w, r, delegationsView(d))
}

func (c *Console) revokeDelegation(w http.ResponseWriter, r *http.Request) error {
	err := c.core.RevokeDelegation(r.Context(), actor(r), r.PostFormValue("scope"), r.PostFormValue("supplier_org"))
	if err != nil {
		return err
	}
	return c.redirect(w, r, "delegations")
}

// encodeQuery is a query string of the non-empty parameters.
func encodeQuery(params map[string]string) string {
	q := url.Values{}
	for k, v := range params {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q.Encode()
}

func boolParam(b bool) string {
	if b {
		return "true"
	}
	return ""
}

// stateLabel is how a state of an access row or a delegation reads.
func stateLabel(state string) string {
	switch state {
	case store.AccessApproved:
		return "approved"
	case store.AccessRequested:
		return "requested"
	case store.AccessDenied:
		return "denied"
	case store.AccessWithdrawn:
		return "withdrawn"
	case store.DelegationActive:
		return "active"
	case store.DelegationRevoked:
		return "revoked"
	}
	return strings.ToLower(state)
}

// scopesHint explains the scopes field, naming the scopes the org has
// access to when known.
func scopesHint(access []string) string {
	h := "Separated by spaces or line breaks: scopes your organisation can get (approved, delegated to it, or open to all)."
	if len(access) > 0 {
		h += " Approved for you: " + strings.Join(access, ", ") + "."
	}
	return h
}

// daysLeft says how long a key has left.
func daysLeft(days int) string {
	switch {
	case days < 0:
		return "expired"
	case days == 0:
		return "expires today"
	case days == 1:
		return "1 day left"
	}
	return strconv.Itoa(days) + " days left"
}
