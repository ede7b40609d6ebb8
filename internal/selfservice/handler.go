package selfservice

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portvakt/portvakt/internal/accesslog"
	"github.com/portvakt/portvakt/internal/config"
	"github.com/portvakt/portvakt/internal/norid"
	"github.com/portvakt/portvakt/internal/records"
	"github.com/portvakt/portvakt/internal/rules"
	"github.com/portvakt/portvakt/internal/signer"
	"github.com/portvakt/portvakt/internal/store"
	"github.com/portvakt/portvakt/pkg/resource"
)

// Base is the path the API lives under, relative to the issuer's path.
const Base = "/api/v1"

// maxBody bounds every request body.
const maxBody = 64 << 10

//go:embed openapi.json
var openAPIDocument []byte

// Config is the API's own configuration.
type Config struct {
	// Issuer is this server's issuer: the only accepted token iss and the
	// only delegation source a scope may name.
	Issuer string
	// PlatformOrg is the platform admin org (config platform.org).
	PlatformOrg string
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Log is for failures outside a request's access line (default: discard).
	Log *slog.Logger
}

type handler struct {
	cfg    Config
	store  store.Store
	rules  *rules.Cache
	keys   *signer.Set
	tokens *resource.Verifier
}

// New returns the API handler. It expects requests for /api/v1/... with the
// issuer's base path already stripped (server.Public does that).
func New(cfg Config, st store.Store, rc *rules.Cache, keys *signer.Set) (http.Handler, error) {
	var errs []error
	if cfg.Issuer == "" {
		errs = append(errs, errors.New("selfservice: Issuer is required"))
	}
	if !norid.ValidOrg(cfg.PlatformOrg) {
		errs = append(errs, fmt.Errorf("selfservice: PlatformOrg %q is not a valid organisation number", cfg.PlatformOrg))
	}
	if st == nil || rc == nil || keys == nil {
		errs = append(errs, errors.New("selfservice: store, rules cache and keys are required"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	h := &handler{cfg: cfg, store: st, rules: rc, keys: keys}
	// NoLeeway: the API gives bearer tokens no expiry leeway, and the
	// verifier shares the signer's clock. The key set pins each key to its
	// algorithm.
	v, err := resource.NewVerifier(context.Background(), resource.VerifierConfig{
		Issuer: cfg.Issuer, KeySet: keys.KeySet(), NoLeeway: true, Now: cfg.Now,
	})
	if err != nil {
		return nil, fmt.Errorf("selfservice: %w", err)
	}
	h.tokens = v
	return h.mux(), nil
}

// authMode says whether a route needs a token.
type authMode int

const (
	authRequired authMode = iota // 401 without a valid token
	authOptional                 // a token, when sent, must be valid
	authNone                     // never looks at the Authorization header
)

// route is one operation of the API. The routes table is what the mux
// serves and what the OpenAPI test compares with openapi.json.
type route struct {
	Method string
	Path   string // below /api/v1, as in the OpenAPI document
	Auth   authMode
	Scopes []string // any one of them is enough; the first is the one named in a 403
	serve  func(w http.ResponseWriter, r *http.Request, c *caller) error
}

// Admin scope sets. A write scope also reads what it writes.
var (
	scopesRead       = []string{"portvakt:scopes.read", "portvakt:scopes.write"}
	scopesWrite      = []string{"portvakt:scopes.write"}
	clientsRead      = []string{"portvakt:clients.read", "portvakt:clients.write"}
	clientsWrite     = []string{"portvakt:clients.write"}
	delegationsRead  = []string{"portvakt:scopes.read", "portvakt:delegations.write"}
	delegationsWrite = []string{"portvakt:delegations.write"}
	auditRead        = []string{"portvakt:audit.read"}
	adminOnly        = []string{config.AdminScope}
)

func (h *handler) routes() []route {
	return []route{
		{"PUT", "/prefixes/{prefix}", authRequired, adminOnly, h.putPrefix},
		{"GET", "/prefixes", authRequired, adminOnly, h.listPrefixes},

		{"POST", "/scopes", authRequired, scopesWrite, h.createScope},
		{"GET", "/scopes", authRequired, scopesRead, h.getScopes},
		{"PUT", "/scopes", authRequired, scopesWrite, h.updateScope},
		{"DELETE", "/scopes", authRequired, scopesWrite, h.deleteScope},
		{"GET", "/scopes/all", authOptional, nil, h.allScopes},

		{"PUT", "/scopes/access/{org}", authRequired, scopesWrite, h.grantAccess},
		{"DELETE", "/scopes/access/{org}", authRequired, scopesWrite, h.revokeAccess},
		{"GET", "/scopes/access", authRequired, scopesRead, h.listAccess},
		{"GET", "/scopes/access/all", authRequired, scopesRead, h.myAccess},

		{"GET", "/delegationsources", authNone, nil, h.delegationSources},

		{"POST", "/clients", authRequired, clientsWrite, h.createClient},
		{"GET", "/clients", authRequired, clientsRead, h.listClients},
		{"GET", "/clients/{id}", authRequired, clientsRead, h.getClient},
		{"PUT", "/clients/{id}", authRequired, clientsWrite, h.updateClient},
		{"DELETE", "/clients/{id}", authRequired, clientsWrite, h.deleteClient},

		{"GET", "/clients/{id}/jwks", authRequired, clientsRead, h.getJWKS},
		{"POST", "/clients/{id}/jwks", authRequired, clientsWrite, h.putJWKS},
		{"DELETE", "/clients/{id}/jwks", authRequired, clientsWrite, h.deleteJWKS},

		{"PUT", "/delegations/{supplier_org}", authRequired, delegationsWrite, h.putDelegation},
		{"DELETE", "/delegations/{supplier_org}", authRequired, delegationsWrite, h.revokeDelegation},
		{"GET", "/delegations", authRequired, delegationsRead, h.listDelegations},

		{"GET", "/audit", authRequired, auditRead, h.audit},

		{"GET", "/openapi.json", authNone, nil, h.openAPI},
	}
}

// mux registers one pattern per path and dispatches on the method itself,
// so that a wrong method is a 405 problem with Allow, and an unknown path a
// 404 problem.
func (h *handler) mux() http.Handler {
	byPath := map[string][]route{}
	var paths []string
	for _, rt := range h.routes() {
		if _, ok := byPath[rt.Path]; !ok {
			paths = append(paths, rt.Path)
		}
		byPath[rt.Path] = append(byPath[rt.Path], rt)
	}
	mux := http.NewServeMux()
	for _, p := range paths {
		rts := byPath[p]
		mux.HandleFunc(Base+p, func(w http.ResponseWriter, r *http.Request) {
			var allow []string
			for _, rt := range rts {
				if rt.Method == r.Method || (r.Method == http.MethodHead && rt.Method == http.MethodGet) {
					h.serve(w, r, rt)
					return
				}
				allow = append(allow, rt.Method)
			}
			p := newProblem(http.StatusMethodNotAllowed, TypeMethod, "method_not_allowed",
				"%s is not served at %s; use %s", r.Method, r.URL.Path, strings.Join(allow, ", "))
			p.allow = strings.Join(allow, ", ")
			writeError(w, r, p)
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, notFound("there is no endpoint at %s; see %s/openapi.json", r.URL.Path, Base))
	})
	return mux
}

func (h *handler) serve(w http.ResponseWriter, r *http.Request, rt route) {
	var c *caller
	if rt.Auth == authRequired || (rt.Auth == authOptional && r.Header.Get("Authorization") != "") {
		var err error
		if c, err = h.authenticate(r); err != nil {
			writeError(w, r, err)
			return
		}
		accesslog.From(r.Context()).SetClient(c.ClientID, c.Org, c.Supplier)
		if len(rt.Scopes) > 0 && !slices.ContainsFunc(rt.Scopes, c.has) {
			writeError(w, r, insufficientScope(rt.Scopes))
			return
		}
		c.via = slices.DeleteFunc(slices.Clone(rt.Scopes), func(s string) bool { return !c.has(s) })
		if err := viaDelegation(r.Context(), h.store, c); err != nil {
			writeError(w, r, err)
			return
		}
	}
	if err := rt.serve(w, r, c); err != nil {
		writeError(w, r, err)
	}
}

// decodeBody reads one JSON object into v, strictly: unknown fields, a
// wrong type or trailing data are 400s naming the field.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return newProblem(http.StatusUnsupportedMediaType, TypeUnsupported, "unsupported_media_type",
				"the body must be JSON; send Content-Type: application/json")
		}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("trailing data")
	}
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("trailing data")
		}
	}
	if err == nil {
		return nil
	}
	var typeErr *json.UnmarshalTypeError
	var maxErr *http.MaxBytesError
	var fe FieldError
	switch {
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			field = "body"
		}
		fe = FieldError{Field: field, Detail: fmt.Sprintf("must be a JSON %s, not %s", jsonKind(typeErr.Type.Kind().String()), typeErr.Value)}
	case errors.As(err, &maxErr):
		fe = FieldError{Field: "body", Detail: fmt.Sprintf("larger than %d bytes", maxBody)}
	case errors.Is(err, io.EOF):
		fe = FieldError{Field: "body", Detail: "empty; send a JSON object"}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		if len(name) > 64 || records.CheckName("", name) != nil {
			name = "body" // not echoed: no known field is like it
		}
		fe = FieldError{Field: name, Detail: "unknown field; see the API description at " + Base + "/openapi.json"}
	default:
		fe = FieldError{Field: "body", Detail: "not a single valid JSON object"}
	}
	p := invalid([]FieldError{fe})
	p.cause = err
	return p
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "slice", "array":
		return "array"
	case "struct", "map", "ptr":
		return "object"
	default:
		return "number"
	}
}

// inactiveParam reads ?inactive=true|false.
func inactiveParam(r *http.Request) (bool, error) {
	v := r.URL.Query().Get("inactive")
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, invalid([]FieldError{{Field: "inactive", Detail: "must be true or false"}})
	}
	return b, nil
}

// scopeParam reads the required ?scope= of the single-scope endpoints.
func scopeParam(r *http.Request) (string, error) {
	q := r.URL.Query()["scope"]
	switch {
	case len(q) == 0 || q[0] == "":
		return "", invalid([]FieldError{{Field: "scope", Detail: "the query parameter scope is required, e.g. ?scope=prefix:name"}})
	case len(q) > 1:
		return "", invalid([]FieldError{{Field: "scope", Detail: "give the query parameter scope once"}})
	case len(q[0]) > records.MaxScopeName:
		return "", invalid([]FieldError{{Field: "scope", Detail: fmt.Sprintf("is longer than %d characters, so it names no scope", records.MaxScopeName)}})
	}
	return q[0], nil
}

// change is what a write did, for its audit event.
type change struct {
	action, kind, target string
	orgs                 []string
	before, after        any // nil = none
	// also are changes the write caused, each an audit event after its own.
	also []change
}

// commit runs fn and the audit event of what it did in one transaction,
// then invalidates the rules cache so the token endpoint sees the change
// at once. Bad input must be refused before commit: fn's checks are only
// those that need the transaction's reads.
func (h *handler) commit(ctx context.Context, c *caller, fn func(tx store.Tx, now time.Time) (change, error)) error {
	wrote := false
	defer func() {
		// Also when the commit itself failed: its outcome may be unknown.
		if wrote {
			h.rules.Invalidate()
		}
	}()
	return h.store.Update(ctx, func(tx store.Tx) error {
		// A vendor's delegation is checked again where a revoke would
		// conflict with the write: the transaction.
		if err := viaDelegation(ctx, tx, c); err != nil {
			return err
		}
		now := h.cfg.Now().UTC()
		ch, err := fn(tx, now)
		if err != nil {
			return err
		}
		for _, ch := range append([]change{ch}, ch.also...) {
			ev := store.AuditEvent{
				Time: now, ActorOrg: c.Org, ActorClientID: c.ClientID, ActorTokenJTI: c.TokenJTI,
				Action: ch.action, TargetKind: ch.kind, Target: ch.target,
				Orgs: orgSet(append(ch.orgs, c.Org, c.Supplier)...),
			}
			if ev.Before, err = rawJSON(ch.before); err != nil {
				return err
			}
			if ev.After, err = rawJSON(ch.after); err != nil {
				return err
			}
			wrote = true
			if err := tx.AppendAudit(ctx, ev); err != nil {
				return err
			}
		}
		return nil
	})
}

func rawJSON(v any) (json.RawMessage, error) {
	if v == nil {
		return nil, nil
	}
	return json.Marshal(v)
}

// orgSet drops empties and duplicates, keeping order.
func orgSet(orgs ...string) []string {
	out := make([]string, 0, len(orgs))
	for _, o := range orgs {
		if o != "" && !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	return out
}

func unix(s int64) time.Time { return time.Unix(s, 0) }

func (h *handler) delegationSources(w http.ResponseWriter, _ *http.Request, _ *caller) error {
	writeJSON(w, http.StatusOK, []map[string]string{{"name": "portvakt", "issuer": h.cfg.Issuer}})
	return nil
}

func (h *handler) openAPI(w http.ResponseWriter, _ *http.Request, _ *caller) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_, _ = w.Write(openAPIDocument)
	return nil
}
