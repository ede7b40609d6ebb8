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

// referenceFiles are what the reference server writes into its directory
// once it listens.
const (
	refIssuerFile = "issuer"
	refMixFile    = "mix.json"
	refKeyFile    = "client-key.pem"
	refKID        = "reference-1"
	refClientID   = "reference-client"
)

// serveReference runs the reference server on a free loopback port until ctx
// ends. It writes its client key, a mix naming it, and (last, so a reader
// that sees it finds the rest) its issuer into dir.
func serveReference(ctx context.Context, dir string) error {
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
	srv := &http.Server{Handler: referenceHandler(issuer, &clientKey.PublicKey, signKey), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// referenceHandler serves the metadata document and the token endpoint.
func referenceHandler(issuer string, clientKey *rsa.PublicKey, signKey *rsa.PrivateKey) http.Handler {
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
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10) // the body limit of SPEC 2.4
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
		var jti [16]byte
		_, _ = rand.Read(jti[:])
		now := time.Now()
		at := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
			"iss": issuer, "client_id": refClientID, "scope": scope, "token_type": "Bearer",
			"iat": now.Unix(), "exp": now.Add(120 * time.Second).Unix(), "jti": base64.RawURLEncoding.EncodeToString(jti[:]),
		})
		at.Header["typ"] = "at+jwt"
		signed, err := at.SignedString(signKey)
		if err != nil {
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
	if o.issuer, o.mix, o.serverPID, stop, err = startReference(ctx, dir); err != nil {
		return err
	}
	defer stop()
	o.tokenURL, o.driver = "", "reference"
	return bench(ctx, o, out)
}

// startReference starts `portvakt-bench reference-server DIR` as a child
// process and waits until it listens. stop ends it.
func startReference(ctx context.Context, dir string) (issuer, mix string, pid int, stop func(), err error) {
	exe, err := os.Executable()
	if err != nil {
		return "", "", 0, nil, err
	}
	cmd := exec.Command(exe, referenceCommand, dir)
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
