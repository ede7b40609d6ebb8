package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
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

// summaryLine is the output's summary line.
func summaryLine(out string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "summary: ") {
			return l
		}
	}
	return ""
}

// summaryField is one key=value of the summary line.
func summaryField(t *testing.T, summary, key string) string {
	t.Helper()
	for _, f := range strings.Fields(summary) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v
		}
	}
	t.Fatalf("summary line lacks %s: %s", key, summary)
	return ""
}

// TestBench runs the tool against a real server for a moment.
func TestBench(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	mix := writeMix(t, s)
	for _, tc := range []struct {
		name     string
		requests int
		duration time.Duration
		want     []string
	}{
		// Two rounds of 300 ms, a bound sample before each and after the
		// last.
		{"ok/rounds", 0, 600 * time.Millisecond, []string{"rounds=2", "errors=none"}},
		// The cap ends the load in the first round: rounds long enough
		// that 60 requests end the first even on a busy machine.
		{"ok/requests", 60, 60 * time.Second, []string{"rounds=1", "requests=60", "errors=none"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := bench(t.Context(), options{
				issuer: s.Issuer, mix: mix, concurrency: 2, duration: tc.duration, rounds: 2, requests: tc.requests,
				boundSample: 100 * time.Millisecond, rateEstimate: 800, serverPID: s.PID(), driver: "sqlite",
				presignLimit: 20 * time.Second, warmupPerClient: 1,
			}, &out)
			if err != nil {
				t.Fatalf("bench: %v\n%s", err, out.String())
			}
			t.Log(out.String())
			summary := summaryLine(out.String())
			for _, want := range append(tc.want, "driver=sqlite") {
				if !strings.Contains(summary, want) {
					t.Errorf("summary line lacks %q: %s", want, summary)
				}
			}
			for _, key := range []string{"tokens_per_s", "requests", "p50_ms", "p99_ms", "bound_per_s", "bound_min_per_s", "bound_max_per_s",
				"ratio", "ratio_adj", "cpu_eff", "server_cpu_s", "loadgen_cpu_s", "loadgen_us_per_req", "rss_mib"} {
				v, err := strconv.ParseFloat(summaryField(t, summary, key), 64)
				if err != nil || v <= 0 {
					t.Errorf("summary %s=%v, want a positive number: %s", key, v, summary)
				}
			}
			// One line per round in the table, bound samples either side.
			rounds, _ := strconv.Atoi(summaryField(t, summary, "rounds"))
			if got := strings.Count(out.String(), "\n    1  ") + strings.Count(out.String(), "\n    2  "); got != rounds {
				t.Errorf("%d round lines, want %d:\n%s", got, rounds, out.String())
			}
			if !strings.Contains(out.String(), fmt.Sprintf("pooled over %d samples", rounds+1)) {
				t.Errorf("want %d bound samples:\n%s", rounds+1, out.String())
			}
		})
	}
}

func TestPlanRounds(t *testing.T) {
	for _, tc := range []struct {
		name   string
		d      time.Duration
		n      int
		sample time.Duration
		want   int
		err    string
	}{
		{"ok/auto-short", time.Second, 0, 400 * time.Millisecond, 2, ""},
		{"ok/auto-10s", 10 * time.Second, 0, 400 * time.Millisecond, 4, ""},
		{"ok/auto-20s", 20 * time.Second, 0, 400 * time.Millisecond, 7, ""},
		{"ok/auto-longest", 100 * time.Second, 0, 400 * time.Millisecond, 34, ""},
		{"ok/given", 10 * time.Second, 3, 400 * time.Millisecond, 3, ""},
		{"ok/no-bound", 100 * time.Second, 100, 0, 100, ""},
		{"fail/outlives-assertions", 100 * time.Second, 40, 400 * time.Millisecond, 0, "pre-signed assertions live"},
		{"fail/negative", 10 * time.Second, -1, 0, 0, "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := planRounds(tc.d, tc.n, tc.sample)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %d, %v; want an error containing %q", got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %d, %v; want %d", got, err, tc.want)
			}
		})
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
		{"fail/outlives-assertions", options{issuer: s.Issuer, duration: 100 * time.Second, boundSample: 2 * time.Second}, "pre-signed assertions live"},
		{"fail/token-url-scheme", options{issuer: s.Issuer, tokenURL: "ftp://127.0.0.1/token"}, "want an http:// or https:// URL"},
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
	// statm and status give the same resident size, give or take what
	// the process did between the reads.
	if rss2, err := procRSS(pid); err != nil || rss2 < rss*0.8 || rss2 > rss*1.25 {
		t.Fatalf("procRSS %.1f, status says %.1f: %v", rss2, rss, err)
	}
	if _, err := machineBusy(); err != nil {
		t.Fatal(err)
	}
}
