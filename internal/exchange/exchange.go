package exchange

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portvakt/portvakt/internal/access"
	"github.com/portvakt/portvakt/internal/entcert"
	"github.com/portvakt/portvakt/internal/protocol"
	"github.com/portvakt/portvakt/internal/ratelimit"
	"github.com/portvakt/portvakt/internal/rules"
	"github.com/portvakt/portvakt/internal/signer"
	"github.com/portvakt/portvakt/internal/store"
	"github.com/portvakt/portvakt/pkg/dpop"
	"github.com/portvakt/portvakt/pkg/jwa"
)

// MaxAssertionLifetime bounds exp - iat of an assertion (docs/protocol.md).
const MaxAssertionLifetime = 120 * time.Second

// AllowedAlgorithms are the assertion signature algorithms (never none, never
// HMAC).
var AllowedAlgorithms = jwa.Algorithms()

// Config is the exchange's own configuration.
type Config struct {
	Issuer          string
	ClockSkew       time.Duration // how far ahead iat and nbf may be; default 10s
	DefaultLifetime time.Duration // token lifetime with no cap; default 120s
	Now             func() time.Time
	// Observer is told of the grant's steps; nil observes nothing.
	Observer Observer
	// Limits, when set, are the rate limits, counted before any signature
	// work (docs/protocol.md).
	Limits *ratelimit.Limiter
	// DPoP verifies the DPoP proofs of token requests; nil makes one with
	// the allow-list of package jwa, ClockSkew as its leeway and no nonces.
	DPoP *dpop.Verifier
}

// Observer is told of the grant's steps (traces, and the signing time in
// metrics). Step is called as a step starts, with the step's name (one of
// the Step constants) and the context it runs in; the context it returns is
// the step's, which the step's own steps start from, and end is called once,
// with the step's error (nil, a *protocol.Error or a store error), when the
// step ends. It runs on the request's path and must be cheap.
type Observer interface {
	Step(ctx context.Context, name string) (_ context.Context, end func(error))
}

// The steps of the grant an Observer is told of. The names are the span
// names operators see.
const (
	StepVerifyAssertion   = "assertion.verify"          // the client, its key or certificate, the signature
	StepVerifyCertificate = "certificate.verify"        // the x5c chain, within StepVerifyAssertion
	StepDecide            = "access.decide"             // the access decision
	StepRecordToken       = "store.insert_issued_token" // the replay insert, from hand-over to answer
	StepSign              = "token.sign"                // the access token's signature
	StepVerifyProof       = "dpop.verify"               // the DPoP proof, within StepVerifyAssertion
	StepRecordProof       = "store.insert_dpop_proof"   // the DPoP proof's single-use insert
)

// nopObserver observes nothing.
type nopObserver struct{}

func (nopObserver) Step(ctx context.Context, _ string) (context.Context, func(error)) {
	return ctx, endNothing
}

func endNothing(error) {}

// RuleSource hands out the current access-rules snapshot.
type RuleSource interface {
	Snapshot(ctx context.Context) (*rules.Snapshot, error)
}

// TokenRecorder writes the issued-token row (the replay check), while the
// token is signed (see store.Store.StartInsertIssuedToken).
type TokenRecorder interface {
	StartInsertIssuedToken(ctx context.Context, t store.IssuedToken) (wait func() error)
	// InsertDPoPProof makes a DPoP proof single use (see
	// store.Store.InsertDPoPProof).
	InsertDPoPProof(ctx context.Context, p store.DPoPProof, now time.Time) error
}

// Exchanger turns assertions into access tokens.
type Exchanger struct {
	cfg    Config
	rules  RuleSource
	certs  *entcert.Verifier
	tokens TokenRecorder
	keys   *signer.Set
	parser *jwt.Parser
	policy access.Policy
	proofs *dpop.Verifier
}

// New wires an Exchanger. certs may be nil when no trust anchors are
// configured: certificate clients are then refused.
func New(cfg Config, rs RuleSource, certs *entcert.Verifier, tokens TokenRecorder, keys *signer.Set) *Exchanger {
	if cfg.ClockSkew == 0 {
		cfg.ClockSkew = 10 * time.Second
	}
	if cfg.DefaultLifetime == 0 {
		cfg.DefaultLifetime = 120 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Observer == nil {
		cfg.Observer = nopObserver{}
	}
	proofs := cfg.DPoP
	if proofs == nil {
		// The zero config but the leeway cannot fail.
		proofs, _ = dpop.NewVerifier(dpop.VerifierConfig{Leeway: cfg.ClockSkew, Now: cfg.Now})
	}
	return &Exchanger{
		cfg: cfg, rules: rs, certs: certs, tokens: tokens, keys: keys,
		parser: jwt.NewParser(jwt.WithValidMethods(AllowedAlgorithms), jwt.WithJSONNumber(), jwt.WithoutClaimsValidation(),
			jwt.WithStrictDecoding()),
		policy: access.Policy{Issuer: cfg.Issuer, DefaultLifetime: cfg.DefaultLifetime},
		proofs: proofs,
	}
}

// Request is the typed token request: the form is already checked.
type Request struct {
	Assertion string
	// RemoteAddr is the client's address ("host:port"): the rate limit of
	// requests that name no known client.
	RemoteAddr string
	// DPoP is the request's one DPoP proof (RFC 9449), empty for a bearer
	// token; the HTTP layer has checked there is at most one and bounded
	// its size.
	DPoP string
	// X5T is the x5t#S256 thumbprint of the client certificate the request
	// came with (RFC 8705, from the TLS connection or a trusted proxy),
	// empty without one. The certificate binds; it does not authenticate.
	X5T string
}

// Result describes a token request. On failure the fields learned before the
// failure are set, for the access log.
type Result struct {
	AccessToken string
	ExpiresIn   int64
	Scope       string
	ClientID    string
	ClientAMR   string
	ConsumerOrg string
	SupplierOrg string
	TokenJTI    string
	// JKT is the thumbprint of the DPoP key the token is bound to, empty
	// for a bearer token.
	JKT string
	// X5T is the thumbprint of the client certificate the token is bound
	// to, empty when it is not certificate-bound.
	X5T string
}

// Delegated reports whether the token names a supplier.
func (r *Result) Delegated() bool { return r.SupplierOrg != "" }

// Exchange runs the whole grant. Errors are *protocol.Error.
func (e *Exchanger) Exchange(ctx context.Context, req Request) (*Result, error) {
	res := &Result{}
	now := e.cfg.Now()

	snap, err := e.rules.Snapshot(ctx)
	if err != nil {
		return res, storeError(err)
	}

	// The assertion's syntax, the client, its key or certificate, the signature.
	if err := checkCompact(req.Assertion); err != nil {
		return res, err
	}
	vctx, endVerify := e.cfg.Observer.Step(ctx, StepVerifyAssertion)
	var keyErr error
	var client store.Client
	var proof *dpop.Proof
	tok, err := e.parser.Parse(req.Assertion, func(t *jwt.Token) (any, error) {
		if _, ok := t.Header["crit"]; ok {
			keyErr = protocol.InvalidGrant("The assertion's header has a crit parameter: this server understands no JWS extension, so it refuses every assertion that names one; remove crit")
			return nil, keyErr
		}
		var key any
		// The rate limits, before any key or signature work (docs/protocol.md).
		if keyErr = e.limit(snap, t, req.RemoteAddr, res); keyErr != nil {
			return nil, keyErr
		}
		if req.DPoP != "" {
			if proof, keyErr = e.checkProof(vctx, req.DPoP); keyErr != nil {
				return nil, keyErr
			}
		}
		client, res.ClientAMR, key, keyErr = e.clientKey(vctx, snap, t, now)
		if keyErr != nil {
			res.ClientID = client.ClientID
			return nil, keyErr
		}
		res.ClientID = client.ClientID
		return key, nil
	})
	if keyErr == nil && err != nil {
		keyErr = parseError(err)
	}
	endVerify(keyErr)
	if keyErr != nil {
		return res, keyErr
	}
	claims := tok.Claims.(jwt.MapClaims)

	// The claims: aud, times, jti, then the formats of scope, resource,
	// consumer_org and pid.
	g, err := e.checkClaims(claims, req.Assertion, client, now)
	if err != nil {
		return res, err
	}
	// The client's require_dpop, the scopes in request order (each with
	// its token_binding), then the resource rules.
	binding := access.Binding{X5T: req.X5T}
	if proof != nil {
		binding.JKT = proof.JKT
	}
	_, endDecide := e.cfg.Observer.Step(ctx, StepDecide)
	grant, err := access.Decide(e.policy, access.Request{
		Client: client, Scopes: g.scopes, ConsumerOrg: g.consumerOrg, Resources: g.resources, Binding: binding,
	}, snap)
	endDecide(err)
	if err != nil {
		return res, err
	}
	res.ConsumerOrg, res.SupplierOrg = grant.ConsumerOrg, grant.SupplierOrg
	tokenType := protocol.TokenTypeBearer
	var cnf *protocol.Confirmation
	if proof != nil {
		// The proof's single-use insert comes before the replay insert, so
		// a replayed proof leaves no issued-token row behind.
		if err := e.recordProof(ctx, proof, now); err != nil {
			return res, err
		}
		tokenType, cnf, res.JKT = protocol.TokenTypeDPoP, &protocol.Confirmation{JKT: proof.JKT}, proof.JKT
	}
	if req.X5T != "" {
		// A certificate binds the token too (RFC 8705 section 3), beside a
		// DPoP key when both were shown: the token then needs both.
		if cnf == nil {
			cnf = &protocol.Confirmation{}
		}
		cnf.X5T, res.X5T = req.X5T, req.X5T
	}

	// The replay insert issues the token. The row is handed to the store
	// before the token is signed and the answer is awaited after: the store
	// writes the rows of concurrent requests together (group commit), all
	// those handed over while the first of them was being signed, and a
	// request that waited for its commit before signing would leave its core
	// idle for the commit's duration. The token is only handed out when the
	// insert succeeded; a replayed assertion costs a discarded signature,
	// as it did when the signature came first. A request that fails before
	// this point leaves nothing behind.
	jti := newJTI()
	iat := now.Truncate(time.Second)
	exp := iat.Add(grant.Lifetime)
	ictx, endRecord := e.cfg.Observer.Step(ctx, StepRecordToken)
	inserted := e.tokens.StartInsertIssuedToken(ictx, store.IssuedToken{
		ClientID: client.ClientID, AssertionJTI: g.replayKey, TokenJTI: jti,
		ConsumerOrgno: grant.ConsumerOrg, SupplierOrgno: grant.SupplierOrg,
		Scopes: grant.Scopes, Audience: grant.Audience,
		IssuedAt: iat, ExpiresAt: exp, ClientAMR: res.ClientAMR,
		CnfJKT: binding.JKT, CnfX5T: binding.X5T,
	})
	claimsOut := protocol.AccessTokenClaims{
		Issuer: e.cfg.Issuer, ClientID: client.ClientID, ClientAMR: res.ClientAMR,
		TokenType: tokenType, Cnf: cnf, Scope: strings.Join(grant.Scopes, " "),
		Consumer: protocol.NewOrg(grant.ConsumerOrg), Aud: audClaim(grant.Audience),
		PID: g.pid, IssuedAt: iat.Unix(), ExpiresAt: exp.Unix(), JTI: jti,
	}
	if grant.SupplierOrg != "" {
		sup := protocol.NewOrg(grant.SupplierOrg)
		claimsOut.Supplier = &sup
		claimsOut.DelegationSource = grant.DelegationSource
	}
	_, endSign := e.cfg.Observer.Step(ctx, StepSign)
	signed, signErr := e.keys.Sign(claimsOut)
	endSign(signErr)
	err = inserted()
	endRecord(err)
	if errors.Is(err, store.ErrConflict) {
		return res, protocol.InvalidGrant("The assertion has already been used: send a new assertion with a fresh jti for every token request").WithCause(err)
	}
	if err != nil {
		return res, storeError(err)
	}
	if signErr != nil {
		return res, protocol.ServerError(signErr)
	}
	res.AccessToken, res.ExpiresIn, res.Scope, res.TokenJTI = signed, int64(grant.Lifetime/time.Second), claimsOut.Scope, jti
	return res, nil
}

func storeError(err error) error {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return pe
	}
	if errors.Is(err, store.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		return protocol.TemporarilyUnavailable(err)
	}
	return protocol.ServerError(err)
}

// parseError maps what the JWT library reports about syntax and signature.
func parseError(err error) error {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return protocol.InvalidGrant("The assertion is not a well-formed signed JWT (JWS compact serialization)").WithCause(err)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid) && strings.Contains(err.Error(), "signing method"):
		return protocol.InvalidGrant("The assertion's alg is not allowed: use one of %s", strings.Join(AllowedAlgorithms, ", ")).WithCause(err)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return protocol.InvalidGrant("The assertion's signature does not verify with the client's key or certificate").WithCause(err)
	}
	return protocol.InvalidGrant("The assertion could not be verified").WithCause(err)
}

func newJTI() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// replayKeyOf is the assertion's jti or, when it has none, the SHA-256 of
// its JWS signing input (header.payload as sent), so that every assertion is
// single-use. The signature is left out on purpose: an ECDSA signature has
// more than one valid encoding, and the header and payload are canonical
// once checkCompact and strict decoding have refused every other spelling
// of the same bytes.
func replayKeyOf(jti, assertion string) string {
	if jti != "" {
		return jti
	}
	sum := sha256.Sum256([]byte(assertion[:strings.LastIndexByte(assertion, '.')]))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// checkCompact refuses an assertion that is not three segments of base64url
// characters, the first two non-empty (an empty signature is left to the
// parser, whose answer names the alg). The base64 decoder skips CR and LF,
// so without this an assertion with line breaks would decode to the same
// JWS under another spelling; strict decoding (in the parser) refuses
// non-zero trailing bits, the other source of alternative spellings.
func checkCompact(assertion string) error {
	dots, start := 0, 0
	for i := 0; i < len(assertion); i++ {
		c := assertion[i]
		switch {
		case c == '.':
			if i == start {
				return errNotCompact()
			}
			dots++
			start = i + 1
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return errNotCompact()
		}
	}
	if dots != 2 {
		return errNotCompact()
	}
	return nil
}

func errNotCompact() error {
	return protocol.InvalidGrant("The assertion is not a well-formed JWS in compact serialization: three parts of base64url without padding, separated by dots")
}

func audClaim(aud []string) any {
	switch len(aud) {
	case 0:
		return protocol.AudienceUnspecified
	case 1:
		return aud[0]
	}
	return aud
}
