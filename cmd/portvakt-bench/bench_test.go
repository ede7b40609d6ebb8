package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/testpki"
	"github.com/portvakt/portvakt/internal/testserver"
)

func TestMain(m *testing.M) { os.Exit(testserver.Main(m)) }

// writeMix writes the testserver's demo clients as a --mix file: a
// certificate client and a kid client asking directly, the vendor by
// delegation.
func writeMix(t *testing.T, s *testserver.Server) string {
	t.Helper()
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return name // relative: the mix file resolves it
	}
	key := func(c testserver.Client) []byte {
		t.Helper()
		b, err := testpki.KeyPEM(c.Key)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	p := s.PKI
	m := mixFile{Clients: []clientSpec{
		{Name: "cert-direct", ClientID: p.ConsumerCert.ID, Cert: write("consumer.pem", testpki.CertPEM(p.ConsumerCert.Leaf.Chain...)),
			Key: write("consumer.key", key(p.ConsumerCert)), Scopes: []string{"demo:read", "demo:write"}, Weight: 2},
		{Name: "kid-direct", ClientID: p.ConsumerKID.ID, Key: write("kid.key", key(p.ConsumerKID)), KID: p.ConsumerKID.KID, Scopes: []string{"demo:read"}},
		{Name: "cert-delegated", ClientID: p.VendorCert.ID, Cert: write("vendor.pem", testpki.CertPEM(p.VendorCert.Leaf.Cert)),
			Key: write("vendor.key", key(p.VendorCert)), Scopes: []string{"demo:read"}, ConsumerOrg: testserver.ConsumerOrg},
	}}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, write("mix.json", b))
}

// TestBench runs the tool against a real server for a moment.
func TestBench(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	var out bytes.Buffer
	err := bench(t.Context(), options{
		issuer: s.Issuer, mix: writeMix(t, s), concurrency: 2, duration: 2 * time.Second, requests: 150,
		boundDuration: 500 * time.Millisecond, serverPID: s.PID(), driver: "sqlite", presignLimit: 20 * time.Second,
		warmupPerClient: 1,
	}, &out)
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, out.String())
	}
	t.Log(out.String())
	var summary string
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(l, "summary: ") {
			summary = l
		}
	}
	for _, want := range []string{"driver=sqlite", "requests=150", "errors=none", "tokens_per_s=", "p99_ms=", "ratio=", "rss_mib="} {
		if !strings.Contains(summary, want) {
			t.Errorf("summary line lacks %q: %s", want, summary)
		}
	}
	if strings.Contains(summary, "ratio=NA") || strings.Contains(summary, "rss_mib=0.0 ") {
		t.Errorf("summary without a ratio or memory: %s", summary)
	}
}

func TestBenchFails(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	for _, tc := range []struct {
		name string
		o    options
		want string
	}{
		{"fail/issuer-without-slash", options{issuer: strings.TrimSuffix(s.Issuer, "/")}, "must end with '/'"},
		{"fail/wrong-issuer", options{issuer: "http://localhost" + strings.TrimPrefix(s.Issuer, "http://127.0.0.1")}, "discovery"},
		{"fail/duration", options{issuer: s.Issuer, duration: 5 * time.Minute}, "--duration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.concurrency = 1
			if tc.o.duration == 0 {
				tc.o.duration = time.Second
			}
			tc.o.mix = writeMix(t, s)
			err := bench(t.Context(), tc.o, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
	t.Run("fail/client-not-allowed", func(t *testing.T) {
		// The warm-up names the client and the server's reason.
		dir := t.TempDir()
		k, _ := testpki.KeyPEM(s.PKI.ConsumerKID.Key)
		_ = os.WriteFile(filepath.Join(dir, "k.pem"), k, 0o600)
		mix := filepath.Join(dir, "mix.json")
		b, _ := json.Marshal(mixFile{Clients: []clientSpec{{Name: "kid-write", ClientID: s.PKI.ConsumerKID.ID, Key: "k.pem", KID: s.PKI.ConsumerKID.KID, Scopes: []string{"demo:write"}}}})
		_ = os.WriteFile(mix, b, 0o600)
		err := bench(t.Context(), options{issuer: s.Issuer, mix: mix, concurrency: 1, duration: time.Second, warmupPerClient: 1}, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), "kid-write") || !strings.Contains(err.Error(), "invalid_scope") {
			t.Fatalf("got %v", err)
		}
	})
}

func TestSchedule(t *testing.T) {
	srcs := []source{{spec: clientSpec{Weight: 2}}, {spec: clientSpec{Weight: 2}}, {spec: clientSpec{Weight: 1}}}
	if got := schedule(srcs); !slices.Equal(got, []int{0, 1, 2, 0, 1}) {
		t.Fatalf("schedule %v", got)
	}
}

func TestPercentile(t *testing.T) {
	s := &stats{}
	for i := 1; i <= 100; i++ {
		s.latencies = append(s.latencies, time.Duration(i)*time.Millisecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{.5, 50 * time.Millisecond}, {.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}} {
		if got := s.percentile(tc.q); got != tc.want {
			t.Errorf("p%v = %s, want %s", tc.q*100, got, tc.want)
		}
	}
}

func TestProc(t *testing.T) {
	pid := os.Getpid()
	if _, err := procCPU(pid); err != nil {
		t.Fatal(err)
	}
	rss, hwm, err := procMem(pid)
	if err != nil || rss <= 0 || hwm < rss*0.9 {
		t.Fatalf("rss %.1f hwm %.1f: %v", rss, hwm, err)
	}
	if _, err := machineBusy(); err != nil {
		t.Fatal(err)
	}
}
