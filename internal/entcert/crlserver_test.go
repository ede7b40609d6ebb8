package entcert

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/testpki"
)

// crlEvents records what a CRLChecker tells its Observer.
type crlEvents struct {
	mu      sync.Mutex
	fetches []string // "outcome"
	inUse   map[string][2]time.Time
}

func (*crlEvents) CacheLookup(bool)    {}
func (*crlEvents) NegativeLookup(bool) {}
func (e *crlEvents) CRLFetch(src string, o CRLOutcome) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.fetches = append(e.fetches, string(o))
}
func (e *crlEvents) CRLInUse(src string, this, next time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.inUse == nil {
		e.inUse = map[string][2]time.Time{}
	}
	e.inUse[src] = [2]time.Time{this, next}
}
func (e *crlEvents) outcomes() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return strings.Join(e.fetches, " ")
}

// distributionPoint is a loopback CRL server and a leaf that names it.
func (f *fixture) distributionPoint(t *testing.T) (*testpki.CRLServer, *testpki.Leaf) {
	t.Helper()
	s := testpki.NewCRLServer()
	t.Cleanup(s.Close)
	return s, f.leaf(testpki.LeafOptions{CRLURLs: []string{s.URL}})
}

func (f *fixture) crl(t *testing.T, ca *testpki.CA, spec testpki.CRLSpec) []byte {
	t.Helper()
	b, err := ca.CRLOf(spec)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCRLAsServersSendIt: the format is read from the bytes, whatever the
// Content-Type; what is not a CRL of the issuer, signed by its key, is
// refused and reported with its outcome.
func TestCRLAsServersSendIt(t *testing.T) {
	f := newFixture(t)
	inter := f.pki.Intermediate
	impostor, err := inter.Impostor(f.now)
	if err != nil {
		t.Fatal(err)
	}
	other, err := testpki.New("Other")
	if err != nil {
		t.Fatal(err)
	}
	day := testpki.CRLSpec{ThisUpdate: f.now.Add(-time.Hour), NextUpdate: f.now.Add(24 * time.Hour)}
	good := f.crl(t, inter, day)
	for _, c := range []struct {
		name, contentType string
		body              []byte
		wantErr, outcome  string
	}{
		{name: "ok/der-pkix-crl", contentType: "application/pkix-crl", body: good, outcome: "ok"},
		{name: "ok/der-octet-stream", contentType: "application/octet-stream", body: good, outcome: "ok"},
		{name: "ok/der-no-content-type", body: good, outcome: "ok"},
		{name: "ok/pem-text-plain", contentType: "text/plain; charset=utf-8", body: testpki.CRLPEM(good), outcome: "ok"},
		{name: "ok/pem-after-text", contentType: "application/x-pem-file", body: append([]byte("Certificate Revocation List (CRL):\n  Version 2\n"), testpki.CRLPEM(good)...), outcome: "ok"},
		{name: "ok/pem-block-named-crl", body: []byte(strings.Replace(string(testpki.CRLPEM(good)), "X509 CRL", "CRL", 2)), outcome: "ok"},
		{name: "fail/html-error-page", contentType: "text/html; charset=utf-8", body: []byte("<html><body>Maintenance</body></html>"), wantErr: "HTML page", outcome: "invalid"},
		{name: "fail/html-page-as-octet-stream", contentType: "application/octet-stream", body: []byte("<html><body>Maintenance</body></html>"), wantErr: "not a CRL in DER or PEM", outcome: "invalid"},
		{name: "fail/pem-certificate", body: testpki.CertPEM(inter.Cert), wantErr: `"CERTIFICATE" block`, outcome: "invalid"},
		{name: "fail/der-certificate", body: inter.Cert.Raw, wantErr: "parse CRL", outcome: "invalid"},
		{name: "fail/signed-by-wrong-key", body: f.crl(t, impostor, day), wantErr: "not signed by its key", outcome: "bad_signature"},
		{name: "fail/crl-of-another-issuer", body: f.crl(t, other.Intermediate, day), wantErr: "not the certificate's issuer", outcome: "invalid"},
		{name: "fail/past-next-update", body: f.crl(t, inter, testpki.CRLSpec{ThisUpdate: f.now.Add(-2 * time.Hour), NextUpdate: f.now.Add(-time.Second)}), wantErr: "stale", outcome: "stale"},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv, l := f.distributionPoint(t)
			srv.Serve(c.body, c.contentType)
			var ev crlEvents
			rc, err := NewCRLChecker(CRLOptions{Now: func() time.Time { return f.now }, Observer: &ev})
			if err != nil {
				t.Fatal(err)
			}
			err = rc.Check(t.Context(), l.Cert, inter.Cert)
			if got := ev.outcomes(); got != c.outcome {
				t.Errorf("outcomes %q, want %q", got, c.outcome)
			}
			if c.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got := ev.inUse[srv.URL]; !got[0].Equal(day.ThisUpdate) || !got[1].Equal(day.NextUpdate) {
					t.Fatalf("in use %v, want %v..%v", got, day.ThisUpdate, day.NextUpdate)
				}
				return
			}
			wantGrantError(t, err, "revocation status could not be checked")
			if !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("cause %v, want %q", err, c.wantErr)
			}
		})
	}
}

// TestCRLRevokedSaysSo: the description says the certificate is revoked,
// when and why, and not which serial: the serial goes to the log.
func TestCRLRevokedSaysSo(t *testing.T) {
	f := newFixture(t)
	srv, l := f.distributionPoint(t)
	at := f.now.Add(-3 * time.Hour)
	srv.Serve(f.crl(t, f.pki.Intermediate, testpki.CRLSpec{ThisUpdate: f.now.Add(-time.Hour), NextUpdate: f.now.Add(time.Hour),
		Revoked: []testpki.Revoked{{Serial: big.NewInt(7)}, {Serial: l.Cert.SerialNumber, At: at, Reason: 1}}}), "application/pkix-crl")
	rc, err := NewCRLChecker(CRLOptions{Now: func() time.Time { return f.now }})
	if err != nil {
		t.Fatal(err)
	}
	err = rc.Check(t.Context(), l.Cert, f.pki.Intermediate.Cert)
	want := fmt.Sprintf("The certificate has been revoked by its issuer (revoked at %s, reason keyCompromise)", at.UTC().Format(time.RFC3339))
	wantGrantError(t, err, want)
	desc := err.Error()[:strings.Index(err.Error(), want)+len(want)+60]
	if strings.Contains(desc, l.Cert.SerialNumber.String()) {
		t.Fatalf("the description names the serial: %q", desc)
	}
	if !strings.Contains(err.Error(), "serial "+l.Cert.SerialNumber.String()) {
		t.Fatalf("the cause does not name the serial: %v", err)
	}
}

// TestCRLGrace: past NextUpdate, with the server down, the old CRL serves
// only within the configured grace; a server still sending the stale CRL
// is asked once per failure TTL, not once per check.
func TestCRLGrace(t *testing.T) {
	f := newFixture(t)
	inter := f.pki.Intermediate
	next := f.now.Add(time.Hour)
	crl := f.crl(t, inter, testpki.CRLSpec{ThisUpdate: f.now.Add(-time.Hour), NextUpdate: next})
	for _, c := range []struct {
		name  string
		grace time.Duration
		// at is when the check runs (after NextUpdate); down: the server
		// is down then, else it still serves the old CRL.
		at      time.Duration
		down    bool
		wantErr bool
	}{
		{name: "fail/down-no-grace", at: time.Hour, down: true, wantErr: true},
		{name: "fail/stale-served-no-grace", at: time.Hour, wantErr: true},
		{name: "ok/down-within-grace", grace: 2 * time.Hour, at: 2 * time.Hour, down: true},
		{name: "ok/stale-served-within-grace", grace: 2 * time.Hour, at: 2 * time.Hour},
		{name: "fail/down-past-grace", grace: 2 * time.Hour, at: 3 * time.Hour, down: true, wantErr: true},
		{name: "fail/stale-served-past-grace", grace: 2 * time.Hour, at: 3 * time.Hour, wantErr: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv, l := f.distributionPoint(t)
			srv.Serve(crl, "application/pkix-crl")
			clk := &clock{t: f.now}
			rc, err := NewCRLChecker(CRLOptions{Now: clk.Now, Grace: c.grace, FailureTTL: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			check := func() error { return rc.Check(t.Context(), l.Cert, inter.Cert) }
			if err := check(); err != nil {
				t.Fatal(err)
			}
			srv.Down(c.down)
			clk.Set(f.now.Add(c.at))
			for range 3 {
				err = check()
				if c.wantErr {
					wantGrantError(t, err, "revocation status could not be checked")
				} else if err != nil {
					t.Fatal(err)
				}
			}
			if n := srv.Hits(); n != 2 {
				t.Fatalf("%d requests, want 2: one fetch, one refresh past NextUpdate, then none within the failure TTL", n)
			}
		})
	}
}

// TestCRLTricklingServer: a server that sends its CRL a byte at a time
// never finishes within the budget; the check ends at the budget all the
// same. The server trickles until the test ends, so returning at all shows
// the bound held.
func TestCRLTricklingServer(t *testing.T) {
	f := newFixture(t)
	srv, l := f.distributionPoint(t)
	good := f.crl(t, f.pki.Intermediate, testpki.CRLSpec{ThisUpdate: f.now, NextUpdate: f.now.Add(time.Hour)})
	srv.Handle(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/pkix-crl")
		for i := 0; ; i = (i + 1) % len(good) {
			if _, err := w.Write(good[i : i+1]); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	})
	var ev crlEvents
	rc, err := NewCRLChecker(CRLOptions{Now: func() time.Time { return f.now }, FetchTimeout: 300 * time.Millisecond, Observer: &ev})
	if err != nil {
		t.Fatal(err)
	}
	err = rc.Check(t.Context(), l.Cert, f.pki.Intermediate.Cert)
	wantGrantError(t, err, "revocation status could not be checked")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cause %v, want a deadline", err)
	}
	// The shared fetch ends at the same deadline; its outcome follows.
	for deadline := time.Now().Add(5 * time.Second); ev.outcomes() == "" && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if got := ev.outcomes(); got != "timeout" {
		t.Fatalf("outcome %q, want timeout", got)
	}
}

// TestCRLCurrentCacheOutlivesServer: a current CRL serves while its server
// is down, and the server is not asked.
func TestCRLCurrentCacheOutlivesServer(t *testing.T) {
	f := newFixture(t)
	srv, l := f.distributionPoint(t)
	srv.Serve(f.crl(t, f.pki.Intermediate, testpki.CRLSpec{ThisUpdate: f.now, NextUpdate: f.now.Add(time.Hour)}), "")
	clk := &clock{t: f.now}
	rc, err := NewCRLChecker(CRLOptions{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range []time.Duration{0, time.Minute, 59 * time.Minute} {
		clk.Set(f.now.Add(at))
		if err := rc.Check(t.Context(), l.Cert, f.pki.Intermediate.Cert); err != nil {
			t.Fatalf("+%v: %v", at, err)
		}
		srv.Down(true)
	}
	if n := srv.Hits(); n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
}

// outageLookups counts the failed-chain cache's hits.
type outageLookups struct {
	noCRLEvents
	hits int
}

func (*outageLookups) CacheLookup(bool) {}
func (o *outageLookups) NegativeLookup(hit bool) {
	if hit {
		o.hits++
	}
}

// TestCRLOutageCostsAHash: while the checker remembers a failed fetch, the
// same chain sent again is refused from the failed-chain cache (a hash, no
// chain work); once the checker would ask the server again, so does the
// verifier, and a server that is back serves at once.
func TestCRLOutageCostsAHash(t *testing.T) {
	f := newFixture(t)
	srv, l := f.distributionPoint(t)
	srv.Down(true)
	clk := &clock{t: f.now}
	rc, err := NewCRLChecker(CRLOptions{Now: clk.Now, FailureTTL: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var obs outageLookups
	p := f.policy()
	p.Now, p.Revocation, p.Observer = clk.Now, rc, &obs
	v := f.verifier(p)
	chain := ders(l.Chain...)
	for range 3 {
		_, err := v.Verify(t.Context(), chain)
		wantGrantError(t, err, "revocation status could not be checked")
	}
	if obs.hits != 2 || srv.Hits() != 1 {
		t.Fatalf("%d failed-chain cache hits, %d CRL requests; want 2 and 1", obs.hits, srv.Hits())
	}
	srv.Down(false)
	srv.Serve(f.crl(t, f.pki.Intermediate, testpki.CRLSpec{ThisUpdate: f.now, NextUpdate: f.now.Add(time.Hour)}), "")
	clk.Set(f.now.Add(19 * time.Second))
	_, err = v.Verify(t.Context(), chain)
	wantGrantError(t, err, "revocation status could not be checked")
	clk.Set(f.now.Add(20 * time.Second))
	if _, err := v.Verify(t.Context(), chain); err != nil {
		t.Fatalf("the server is back and the failure forgotten: %v", err)
	}
	if obs.hits != 3 || srv.Hits() != 2 {
		t.Fatalf("%d failed-chain cache hits, %d CRL requests; want 3 and 2", obs.hits, srv.Hits())
	}
}

// TestCRLNotUsedPastNextUpdateThroughTheCache: a verified leaf is trusted
// from the cache no longer than the CRL that cleared it is current, even
// when the cache's own revocation TTL is longer.
func TestCRLNotUsedPastNextUpdateThroughTheCache(t *testing.T) {
	f := newFixture(t)
	srv, l := f.distributionPoint(t)
	inter := f.pki.Intermediate
	srv.Serve(f.crl(t, inter, testpki.CRLSpec{ThisUpdate: f.now, NextUpdate: f.now.Add(2 * time.Minute)}), "")
	clk := &clock{t: f.now}
	rc, err := NewCRLChecker(CRLOptions{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	p := f.policy()
	p.Now, p.Revocation, p.CacheTTL = clk.Now, rc, 5*time.Minute
	v := f.verifier(p)
	chain := ders(l.Cert)
	if _, err := v.Verify(t.Context(), chain); err != nil {
		t.Fatal(err)
	}
	srv.Serve(f.crl(t, inter, testpki.CRLSpec{ThisUpdate: f.now.Add(2 * time.Minute), NextUpdate: f.now.Add(time.Hour),
		Revoked: []testpki.Revoked{{Serial: l.Cert.SerialNumber}}}), "")
	clk.Set(f.now.Add(time.Minute))
	if _, err := v.Verify(t.Context(), chain); err != nil {
		t.Fatalf("before nextUpdate: %v", err)
	}
	clk.Set(f.now.Add(3 * time.Minute))
	_, err = v.Verify(t.Context(), chain)
	wantGrantError(t, err, "has been revoked")
	if n := srv.Hits(); n != 2 {
		t.Fatalf("%d CRL requests, want 2", n)
	}
}
