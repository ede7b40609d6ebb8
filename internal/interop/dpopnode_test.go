package interop

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// nodeDPoP installs panva's dpop package (testdata/node, pinned by its
// lockfile) into a fresh directory and returns a function that makes a
// proof with it. Without node and npm the test skips, and fails under CI.
func nodeDPoP(t *testing.T) func(alg, htu, htm, nonce string) (proof, jkt string) {
	t.Helper()
	node, nerr := exec.LookPath("node")
	npm, perr := exec.LookPath("npm")
	if nerr != nil || perr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("node and npm are needed for the DPoP interop test: %v %v", nerr, perr)
		}
		t.Skip("node or npm not installed: the DPoP interop test needs them")
	}
	dir := t.TempDir()
	for _, f := range []string{"package.json", "package-lock.json", "proof.mjs"} {
		b, err := os.ReadFile(filepath.Join("testdata", "node", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci: %v\n%s", err, out)
	}
	return func(alg, htu, htm, nonce string) (string, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, node, "proof.mjs", alg, htu, htm, nonce)
		cmd.Dir = dir
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("node proof.mjs: %v", err)
		}
		var r struct{ Proof, JKT string }
		if err := json.Unmarshal(out, &r); err != nil || r.Proof == "" {
			t.Fatalf("node proof.mjs printed %q (%v)", out, err)
		}
		return r.Proof, r.JKT
	}
}

// A proof made by an independent implementation (panva's dpop on Node) is
// accepted, nonce round included, and the token's cnf.jkt is the thumbprint
// that implementation computes for its key.
func TestDPoPProofFromNode(t *testing.T) {
	makeProof := nodeDPoP(t)
	s := dpopServer(t)
	// pkg/client makes the grants; the proofs are Node's.
	grants := s.TokenSource(t, s.PKI.ConsumerKID, "demo:read")
	post := func(proof string) (int, http.Header, map[string]any) {
		t.Helper()
		assertion, err := grants.Assertion(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {assertion}}
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.TokenURL, strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("DPoP", proof)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var body map[string]any
		_ = json.Unmarshal(b, &body)
		return resp.StatusCode, resp.Header, body
	}
	htu := s.Issuer + "token"
	for _, alg := range []string{"ES256", "RS256", "PS256"} {
		t.Run("ok/dpop/node-"+alg, func(t *testing.T) {
			proof, _ := makeProof(alg, htu, "POST", "")
			code, h, body := post(proof)
			nonce := h.Get("DPoP-Nonce")
			if code != 400 || body["error"] != "use_dpop_nonce" || nonce == "" {
				t.Fatalf("without a nonce: %d %v, DPoP-Nonce %q", code, body, nonce)
			}
			proof, jkt := makeProof(alg, htu, "POST", nonce)
			code, _, body = post(proof)
			if code != 200 || body["token_type"] != "DPoP" {
				t.Fatalf("with the nonce: %d %v", code, body)
			}
			cnf, _ := payload(t, body["access_token"].(string))["cnf"].(map[string]any)
			if cnf["jkt"] != jkt {
				t.Fatalf("cnf %v, want jkt %s (the thumbprint the dpop package computes)", cnf, jkt)
			}
		})
	}
	t.Run("fail/dpop/node-Ed25519", func(t *testing.T) {
		// EdDSA is not on portvakt's algorithm list.
		code, _, body := post(func() string { p, _ := makeProof("Ed25519", htu, "POST", ""); return p }())
		if code != 400 || body["error"] != "invalid_dpop_proof" {
			t.Fatalf("%d %v", code, body)
		}
	})
}

// payload decodes a JWT's claims without verifying them (the token was just
// issued over loopback; other tests verify tokens).
func payload(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
