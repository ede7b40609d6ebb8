package selfservice

import (
	"bufio"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/portvakt/portvakt/internal/accesslog"
	"github.com/portvakt/portvakt/internal/manage"
	"github.com/portvakt/portvakt/internal/records"
	"github.com/portvakt/portvakt/internal/signer"
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
	// Issuer is this server's issuer: the only accepted token iss, and the
	// base of the Link headers' URLs.
	Issuer string
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Log is for failures outside a request's access line (default: discard).
	Log *slog.Logger
}

type handler struct {
	cfg    Config
	core   *manage.Service
	keys   *signer.Set
	tokens *resource.Verifier
}

// New returns the API handler over the self-service core. keys are the
// server's signing keys, which verify the bearer tokens. It expects requests
// for /api/v1/... with the issuer's base path already stripped
// (server.Public does that).
func New(cfg Config, core *manage.Service, keys *signer.Set) (http.Handler, error) {
	var errs []error
	if cfg.Issuer == "" {
		errs = append(errs, errors.New("selfservice: Issuer is required"))
	}
	if core == nil || keys == nil {
		errs = append(errs, errors.New("selfservice: the core and the keys are required"))
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
	h := &handler{cfg: cfg, core: core, keys: keys}
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
	Scopes manage.Need // any one of them is enough; the first is the one named in a 403
	serve  func(w http.ResponseWriter, r *http.Request, a *manage.Actor) error
}

// The admin scopes of each route are the core's (manage.Need*): the route
// checks them first, so that a caller without the scope learns that before
// anything about its input, and the core checks them again.
var (
	scopesRead       = manage.NeedScopesRead
	scopesWrite      = manage.NeedScopesWrite
	clientsRead      = manage.NeedClientsRead
	clientsWrite     = manage.NeedClientsWrite
	delegationsRead  = manage.NeedDelegationsRead
	delegationsWrite = manage.NeedDelegationsWrite
	auditRead        = manage.NeedAuditRead
	accessRequest    = manage.NeedAccessRequest
	webhooksWrite    = manage.NeedWebhooksWrite
	membersWrite     = manage.NeedMembersWrite
	adminOnly        = manage.NeedAdmin
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
		{"POST", "/scopes/access/requests", authRequired, accessRequest, h.requestAccess},
		{"DELETE", "/scopes/access/requests", authRequired, accessRequest, h.withdrawRequest},

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

		{"POST", "/webhooks", authRequired, webhooksWrite, h.createWebhook},
		{"GET", "/webhooks", authRequired, webhooksWrite, h.listWebhooks},
		{"GET", "/webhooks/{id}", authRequired, webhooksWrite, h.getWebhook},
		{"PUT", "/webhooks/{id}", authRequired, webhooksWrite, h.updateWebhook},
		{"DELETE", "/webhooks/{id}", authRequired, webhooksWrite, h.deleteWebhook},

		{"GET", "/members", authRequired, membersWrite, h.listMembers},
		{"GET", "/members/{subject}", authRequired, membersWrite, h.getMember},
		{"PUT", "/members/{subject}", authRequired, membersWrite, h.putMember},
		{"DELETE", "/members/{subject}", authRequired, membersWrite, h.deleteMember},

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
			// The access line and the metrics name the route's pattern.
			accesslog.From(r.Context()).SetRoute(Base + p)
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
	var a *manage.Actor
	if rt.Auth == authRequired || (rt.Auth == authOptional && r.Header.Get("Authorization") != "") {
		c, err := h.authenticate(r)
		if err != nil {
			writeError(w, r, err)
			return
		}
		accesslog.From(r.Context()).SetClient(c.ClientID, c.Org, c.Supplier)
		a = &manage.Actor{Org: c.Org, Supplier: c.Supplier, ClientID: c.ClientID, TokenJTI: c.TokenJTI, Scopes: c.Scopes}
		if len(rt.Scopes) > 0 && !a.Permits(rt.Scopes) {
			writeError(w, r, insufficientScope(rt.Scopes))
			return
		}
	}
	if err := rt.serve(w, r, a); err != nil {
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

// decodeOptionalBody is decodeBody for a body that may be left out: no
// body at all leaves v as it is.
func decodeOptionalBody(w http.ResponseWriter, r *http.Request, v any) error {
	if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	if r.ContentLength < 0 {
		// A body of unknown length (chunked) may be empty too.
		br := bufio.NewReaderSize(r.Body, 16)
		if _, err := br.Peek(1); err == io.EOF {
			return nil
		}
		r.Body = struct {
			io.Reader
			io.Closer
		}{br, r.Body}
	}
	return decodeBody(w, r, v)
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

func (h *handler) delegationSources(w http.ResponseWriter, _ *http.Request, _ *manage.Actor) error {
	writeJSON(w, http.StatusOK, h.core.DelegationSources())
	return nil
}

func (h *handler) openAPI(w http.ResponseWriter, _ *http.Request, _ *manage.Actor) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_, _ = w.Write(openAPIDocument)
	return nil
}
