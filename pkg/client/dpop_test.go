package client

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portvakt/portvakt/pkg/dpop"
)

// dpopServer is a token endpoint and an API that require DPoP proofs with
// their nonces, checked by pkg/dpop; tokens are opaque strings bound to the
// proof's key in a map.
type dpopServer struct {
	srv       *httptest.Server
	tokenType string // what the token endpoint answers (default DPoP)
	tokens    atomic.Int64
	requests  atomic.Int64 // token requests
	apiCalls  atomic.Int64
	bound     map[string]string
}

func newDPoPServer(t *testing.T) *dpopServer {
	t.Helper()
	s := &dpopServer{tokenType: "DPoP", bound: map[string]string{}}
	nonces, err := dpop.NewNonces(nil, time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := dpop.NewVerifier(dpop.VerifierConfig{Nonces: nonces})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	refuse := func(w http.ResponseWriter, status int, err error) {
		var de *dpop.Error
		code := "invalid_dpop_proof"
		if errors.As(err, &de) {
			code = de.Code()
		}
		w.Header().Set("DPoP-Nonce", nonces.Current())
		if status == 401 {
			w.Header().Set("WWW-Authenticate", `DPoP error="`+code+`"`)
		}
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"error":%q,"error_description":%q}`, code, err.Error())
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		p, err := v.Verify(r.Header.Get("DPoP"), dpop.Request{Method: "POST", URL: s.srv.URL + "/token"})
		if err != nil {
			refuse(w, 400, err)
			return
		}
		if seen[p.JTI] {
			refuse(w, 400, errors.New("replayed"))
			return
		}
		seen[p.JTI] = true
		tok := fmt.Sprintf("token-%d", s.tokens.Add(1))
		s.bound[tok] = p.JKT
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":%q,"token_type":%q,"expires_in":120,"scope":"acme:read"}`, tok, s.tokenType)
	})
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		s.apiCalls.Add(1)
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "DPoP ")
		if !ok || s.bound[tok] == "" {
			w.WriteHeader(401)
			return
		}
		p, err := v.Verify(r.Header.Get("DPoP"), dpop.Request{Method: r.Method, URL: s.srv.URL + r.URL.Path, AccessToken: tok})
		if err != nil {
			refuse(w, 401, err)
			return
		}
		if seen[p.JTI] || p.JKT != s.bound[tok] {
			refuse(w, 401, errors.New("replayed or another key"))
			return
		}
		seen[p.JTI] = true
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "ok %s %s", r.Method, b)
	})
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	return s
}

func (s *dpopServer) config(t *testing.T, d *DPoP) Config {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := KeySigner(k, "k1")
	if err != nil {
		t.Fatal(err)
	}
	return Config{Issuer: s.srv.URL + "/", TokenURL: s.srv.URL + "/token", ClientID: "c1", Scopes: []string{"acme:read"}, Signer: sig, DPoP: d}
}

func TestDPoPTokenSource(t *testing.T) {
	t.Run("ok/dpop/generated-key-and-nonce-retry", func(t *testing.T) {
		s := newDPoPServer(t)
		ts, err := NewTokenSource(t.Context(), s.config(t, &DPoP{}))
		if err != nil {
			t.Fatal(err)
		}
		r, err := ts.Fetch(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if r.TokenType != "DPoP" || s.requests.Load() != 2 {
			t.Fatalf("token_type %s after %d token requests, want DPoP after 2 (one retry with the nonce)", r.TokenType, s.requests.Load())
		}
		if s.bound[r.AccessToken] != ts.c.cfg.DPoP.Key.Thumbprint() {
			t.Fatal("the token is not bound to the client's key")
		}
		// The nonce is remembered: the next token takes one request.
		if _, err := ts.Fetch(t.Context()); err != nil || s.requests.Load() != 3 {
			t.Fatalf("second token: %v after %d requests", err, s.requests.Load())
		}
	})
	t.Run("ok/dpop/given-key-not-changed", func(t *testing.T) {
		s := newDPoPServer(t)
		k, err := dpop.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		d := &DPoP{Key: k}
		ts, err := NewTokenSource(t.Context(), s.config(t, d))
		if err != nil {
			t.Fatal(err)
		}
		r, err := ts.Fetch(t.Context())
		if err != nil || s.bound[r.AccessToken] != k.Thumbprint() {
			t.Fatalf("%v", err)
		}
		empty := &DPoP{}
		if _, err := NewTokenSource(t.Context(), s.config(t, empty)); err != nil || empty.Key != nil {
			t.Fatal("NewTokenSource changed the caller's DPoP value")
		}
	})
	t.Run("fail/dpop/server-answers-bearer", func(t *testing.T) {
		s := newDPoPServer(t)
		s.tokenType = "Bearer"
		ts, err := NewTokenSource(t.Context(), s.config(t, &DPoP{}))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ts.Fetch(t.Context()); err == nil || !strings.Contains(err.Error(), "not DPoP") {
			t.Fatalf("a bearer answer to a DPoP request: %v", err)
		}
	})
}

func TestDPoPHTTPClient(t *testing.T) {
	s := newDPoPServer(t)
	ts, err := NewTokenSource(t.Context(), s.config(t, &DPoP{}))
	if err != nil {
		t.Fatal(err)
	}
	hc := ts.HTTPClient()
	do := func(method, path, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, s.srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if body == "" {
			req.Body = http.NoBody
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// The API's nonce is the token endpoint's (one server here): the first
	// call already has it, so it takes one request.
	if code, body := do("GET", "/api/a", ""); code != 200 || body != "ok GET " {
		t.Fatalf("ok/dpop/get: %d %q", code, body)
	}
	for i := range 3 {
		before := s.apiCalls.Load()
		if code, body := do("POST", "/api/b", `{"n":1}`); code != 200 || body != `ok POST {"n":1}` || s.apiCalls.Load() != before+1 {
			t.Fatalf("ok/dpop/post-%d: %d %q after %d calls", i, code, body, s.apiCalls.Load()-before)
		}
	}
	t.Run("ok/dpop/retry-after-nonce-turns", func(t *testing.T) {
		// A stale nonce in the book: the API answers use_dpop_nonce and
		// the transport sends the request (body included) once more.
		ts.c.dpopNonces.mu.Lock()
		for k := range ts.c.dpopNonces.m {
			ts.c.dpopNonces.m[k] = "stale"
		}
		ts.c.dpopNonces.mu.Unlock()
		before := s.apiCalls.Load()
		if code, body := do("PUT", "/api/c", "payload"); code != 200 || body != "ok PUT payload" || s.apiCalls.Load() != before+2 {
			t.Fatalf("%d %q after %d calls, want 200 after 2", code, body, s.apiCalls.Load()-before)
		}
	})
	t.Run("ok/bearer-source", func(t *testing.T) {
		var auth atomic.Value
		api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			auth.Store(r.Header.Get("Authorization") + "|" + r.Header.Get("DPoP"))
			_ = json.NewEncoder(w).Encode("ok")
		}))
		defer api.Close()
		tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"access_token":"plain","token_type":"Bearer","expires_in":120}`)
		}))
		defer tokens.Close()
		cfg := s.config(t, nil)
		cfg.TokenURL = tokens.URL
		bts, err := NewTokenSource(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := bts.HTTPClient().Get(api.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if auth.Load() != "Bearer plain|" {
			t.Fatalf("sent %q", auth.Load())
		}
	})
}
