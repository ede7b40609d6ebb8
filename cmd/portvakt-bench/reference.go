package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portvakt/portvakt/internal/protocol"
	"github.com/portvakt/portvakt/internal/store"
	"github.com/portvakt/portvakt/internal/store/sqlstore"
)

// The reference token endpoint: the least any JWT-grant token endpoint does
// per token, and nothing else. It parses the form, verifies the assertion
// (RS256, with the one client's key, aud = issuer, exp), signs an RS256
// access token and writes the JSON answer: the crypto of the bound plus
// net/http, with no store, no access rules, no access log and no metrics.
//
// `portvakt-bench --reference` starts it as a child process (this binary,
// `reference-server DIR`) and runs the same load against it, so that one run
// shows, on this machine and with this tool, how close to the crypto bound
// an HTTP token endpoint can get at all: the gap between its ratio and a
// server's is the server's own work, the gap between it and 1 is the
// machine's HTTP cost and the tool's.
//
// With a store (--reference-store sqlite or postgres) it also does the one
// thing of a server's own work that no token endpoint may skip: the replay
// check, the server's own atomic insert of the issued-token row keyed by the
// assertion's jti (sqlstore's group commit, handed over before the signature
// and awaited after it, as the exchange does). A replayed jti gets
// invalid_grant. The gap between the reference with and without a store is
// the store's cost on this machine; the gap between it and a server is the
// rest of the server's work.

// referenceFiles are what the reference server writes into its directory
// once it listens.
const (
	refIssuerFile = "issuer"
	refMixFile    = "mix.json"
	refKeyFile    = "client-key.pem"
	refKID        = "reference-1"
	refClientID   = "reference-client"
	refDBFile     = "reference.db"
	refOrgno      = "310000035" // the rows' consumer: the dev server's demo consumer
)

// referenceDSNEnv holds the PostgreSQL DSN of --reference-store postgres
// (the server's own variable, as scripts/bench.sh sets it for the server).
const referenceDSNEnv = "PORTVAKT_DATABASE_DSN"

// issuedTokens is the store's replay insert, as the exchange uses it.
type issuedTokens interface {
	StartInsertIssuedToken(ctx context.Context, t store.IssuedToken) (wait func() error)
}

// openReferenceStore opens and migrates the reference's store: driver is
// sqlstore.DriverSQLite (a file in dir) or sqlstore.DriverPostgres (the DSN
// in referenceDSNEnv).
func openReferenceStore(ctx context.Context, dir, driver string) (*sqlstore.Store, error) {
	dsn := filepath.Join(dir, refDBFile)
	switch driver {
	case sqlstore.DriverSQLite:
	case sqlstore.DriverPostgres:
		if dsn = os.Getenv(referenceDSNEnv); dsn == "" {
			return nil, fmt.Errorf("reference store postgres: set %s to the database's DSN", referenceDSNEnv)
		}
	default:
		return nil, fmt.Errorf("reference store %q: want %q or %q", driver, sqlstore.DriverSQLite, sqlstore.DriverPostgres)
	}
	st, err := sqlstore.Open(ctx, sqlstore.Config{Driver: driver, DSN: dsn})
	if err != nil {
		return nil, fmt.Errorf("reference store: %w", err)
	}
	if err := st.Migrate(ctx); err != nil {
		st.Close()
		return nil, fmt.Errorf("reference store: %w", err)
	}
	return st, nil
}

// serveReference runs the reference server on a free loopback port until ctx
// ends, with the store named by storeDriver ("": none). It writes its client
// key, a mix naming it, and (last, so a reader that sees it finds the rest)
// its issuer into dir.
func serveReference(ctx context.Context, dir, storeDriver string) error {
	var tokens issuedTokens
	if storeDriver != "" {
		st, err := openReferenceStore(ctx, dir, storeDriver)
		if err != nil {
			return err
		}
		defer st.Close()
		tokens = st
	}
	clientKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	signKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	issuer := "http://" + ln.Addr().String() + "/"
	der, err := x509.MarshalPKCS8PrivateKey(clientKey)
	if err != nil {
		return err
	}
	mix, err := json.Marshal(mixFile{Clients: []clientSpec{{
		Name: "reference-kid", ClientID: refClientID, Key: filepath.Join(dir, refKeyFile), KID: refKID, Scopes: []string{"reference:read"},
	}}})
	if err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		data []byte
	}{
		{refKeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})},
		{refMixFile, mix},
		{refIssuerFile, []byte(issuer)},
	} {
		// Each file appears whole (a rename), so the issuer's means all are.
		tmp := filepath.Join(dir, f.name+".tmp")
		if err := os.WriteFile(tmp, f.data, 0o600); err != nil {
			return err
		}
		if err := os.Rename(tmp, filepath.Join(dir, f.name)); err != nil {
			return err
		}
	}
	srv := &http.Server{Handler: referenceHandler(issuer, &clientKey.PublicKey, signKey, tokens), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// referenceHandler serves the metadata document and the token endpoint;
// tokens, when not nil, is the replay insert.
func referenceHandler(issuer string, clientKey *rsa.PublicKey, signKey *rsa.PrivateKey, tokens issuedTokens) http.Handler {
	parser := jwt.NewParser(jwt.WithValidMethods([]string{"RS256"}), jwt.WithAudience(issuer), jwt.WithExpirationRequired(), jwt.WithIssuedAt())
	keyFunc := func(t *jwt.Token) (any, error) {
		if t.Header["kid"] != refKID {
			return nil, errors.New("unknown kid")
		}
		return clientKey, nil
	}
	refuse := func(w http.ResponseWriter, status int, code string) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(status)
		_, _ = fmt.Fprintf(w, `{"error":%q}`, code)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": issuer, "token_endpoint": issuer + "token"})
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10) // the body limit of docs/protocol.md
		if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != protocol.GrantTypeJWTBearer {
			refuse(w, http.StatusBadRequest, "invalid_request")
			return
		}
		tok, err := parser.Parse(r.PostForm.Get("assertion"), keyFunc)
		if err != nil {
			refuse(w, http.StatusBadRequest, "invalid_grant")
			return
		}
		claims := tok.Claims.(jwt.MapClaims)
		if claims["iss"] != refClientID {
			refuse(w, http.StatusBadRequest, "invalid_grant")
			return
		}
		scope, _ := claims["scope"].(string)
		var b [16]byte
		_, _ = rand.Read(b[:])
		jti := base64.RawURLEncoding.EncodeToString(b[:])
		now := time.Now().Truncate(time.Second)
		exp := now.Add(120 * time.Second)
		inserted := func() error { return nil }
		if tokens != nil {
			ajti, _ := claims["jti"].(string)
			if ajti == "" {
				refuse(w, http.StatusBadRequest, "invalid_grant")
				return
			}
			inserted = tokens.StartInsertIssuedToken(r.Context(), store.IssuedToken{
				ClientID: refClientID, AssertionJTI: ajti, TokenJTI: jti, ConsumerOrgno: refOrgno,
				Scopes: []string{scope}, Audience: []string{}, IssuedAt: now, ExpiresAt: exp, ClientAMR: protocol.AMRPrivateKeyJWT,
			})
		}
		at := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
			"iss": issuer, "client_id": refClientID, "scope": scope, "token_type": "Bearer",
			"iat": now.Unix(), "exp": exp.Unix(), "jti": jti,
		})
		at.Header["typ"] = "at+jwt"
		signed, signErr := at.SignedString(signKey)
		if err := inserted(); errors.Is(err, store.ErrConflict) {
			refuse(w, http.StatusBadRequest, "invalid_grant")
			return
		} else if err != nil {
			refuse(w, http.StatusServiceUnavailable, "temporarily_unavailable")
			return
		}
		if signErr != nil {
			refuse(w, http.StatusInternalServerError, "server_error")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": signed, "token_type": "Bearer", "expires_in": 120, "scope": scope})
	})
	return mux
}

// benchReference runs bench against a reference server started for the run
// (the options that name a server are replaced).
func benchReference(ctx context.Context, o options, out io.Writer) error {
	dir, err := os.MkdirTemp("", "portvakt-bench-reference")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var stop func()
	if o.issuer, o.mix, o.serverPID, stop, err = startReference(ctx, dir, o.referenceStore); err != nil {
		return err
	}
	defer stop()
	o.tokenURL, o.driver = "", referenceLabel(o.referenceStore)
	return bench(ctx, o, out)
}

// referenceLabel is the summary's driver for the reference with storeDriver.
func referenceLabel(storeDriver string) string {
	if storeDriver == "" {
		return "reference"
	}
	return "reference+" + storeDriver
}

// startReference starts `portvakt-bench reference-server DIR [STORE]` as a
// child process and waits until it listens. stop ends it.
func startReference(ctx context.Context, dir, storeDriver string) (issuer, mix string, pid int, stop func(), err error) {
	exe, err := os.Executable()
	if err != nil {
		return "", "", 0, nil, err
	}
	args := []string{referenceCommand, dir}
	if storeDriver != "" {
		args = append(args, storeDriver)
	}
	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return "", "", 0, nil, fmt.Errorf("reference server: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop = func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	deadline := time.NewTimer(30 * time.Second) // two RSA keys, then a listen
	defer deadline.Stop()
	for {
		if issuer, mix, ok := referenceReady(dir); ok {
			return issuer, mix, cmd.Process.Pid, stop, nil
		}
		select {
		case err := <-exited:
			exited <- err
			return "", "", 0, nil, fmt.Errorf("reference server exited: %v", err)
		case <-deadline.C:
			stop()
			return "", "", 0, nil, errors.New("reference server: not listening after 30 s")
		case <-ctx.Done():
			stop()
			return "", "", 0, nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// referenceReady reports whether the reference server in dir listens, and
// then its issuer and mix file (the issuer's file is written last).
func referenceReady(dir string) (issuer, mix string, ok bool) {
	b, err := os.ReadFile(filepath.Join(dir, refIssuerFile))
	if err != nil || len(b) == 0 {
		return "", "", false
	}
	return string(b), filepath.Join(dir, refMixFile), true
}

// referenceCommand is the child's first argument.
const referenceCommand = "reference-server"
