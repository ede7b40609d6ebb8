package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/portvakt/portvakt/pkg/client"
)

type options struct {
	issuer, tokenURL string
	devDir, mix      string
	concurrency      int
	duration         time.Duration
	requests         int
	boundDuration    time.Duration
	rateEstimate     float64
	serverPID        int
	driver           string
	presignLimit     time.Duration
	warmupPerClient  int
	wait             time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.issuer, "issuer", envOr("PORTVAKT_ISSUER", "http://127.0.0.1:8080/"), "the server's issuer URL (env PORTVAKT_ISSUER)")
	flag.StringVar(&o.tokenURL, "token-url", "", "token endpoint (default: discovered from the issuer's metadata)")
	flag.StringVar(&o.devDir, "dev-dir", ".portvakt-dev", "data directory of `portvakt serve --dev`: its PKI and the demo clients make the mix (ignored with --mix)")
	flag.StringVar(&o.mix, "mix", "", `JSON client mix: {"clients":[{"name","client_id","cert","key" | "p12","p12_password" | "key","kid", "scopes":[...], "consumer_org", "resources":[...], "weight"}]}`)
	flag.IntVar(&o.concurrency, "concurrency", 8, "concurrent connections (keep-alive)")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "length of the measured window (at most 100s: assertions live 120 s)")
	flag.IntVar(&o.requests, "requests", 0, "stop after this many requests (0: no cap)")
	flag.DurationVar(&o.boundDuration, "bound-duration", 2*time.Second, "how long to measure the crypto bound (0: skip)")
	flag.Float64Var(&o.rateEstimate, "rate", 0, "tokens/s to pre-sign for (default: the crypto bound, which the server cannot exceed)")
	flag.IntVar(&o.serverPID, "server-pid", 0, "pid of the server when it runs on this machine: CPU seconds and memory from /proc")
	flag.StringVar(&o.driver, "driver", "unknown", "label for the summary line (the server's database driver)")
	flag.DurationVar(&o.presignLimit, "presign-limit", 60*time.Second, "stop pre-signing after this long")
	flag.IntVar(&o.warmupPerClient, "warmup", 5, "unmeasured requests per client before the window (connections, caches)")
	flag.DurationVar(&o.wait, "wait", 0, "wait up to this long for the server to answer discovery (a server just started)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := bench(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "portvakt-bench:", err)
		os.Exit(1)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func bench(ctx context.Context, o options, out io.Writer) error {
	if o.concurrency < 1 {
		return errors.New("--concurrency must be at least 1")
	}
	if o.duration <= 0 || o.duration > 100*time.Second {
		return errors.New("--duration must be in (0, 100s]: pre-signed assertions expire 120 s after signing")
	}
	if !strings.HasSuffix(o.issuer, "/") {
		return fmt.Errorf("--issuer %q must end with '/' (it is the grant's aud, byte for byte)", o.issuer)
	}
	specs := devMix(o.devDir)
	if o.mix != "" {
		var err error
		if specs, err = readMix(o.mix); err != nil {
			return err
		}
	}
	tr := &http.Transport{
		MaxIdleConns: 2 * o.concurrency, MaxIdleConnsPerHost: 2 * o.concurrency,
		IdleConnTimeout: 90 * time.Second, DisableCompression: true,
	}
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	if o.tokenURL == "" {
		var err error
		deadline := time.Now().Add(o.wait)
		for {
			if o.tokenURL, err = discover(ctx, hc, o.issuer); err == nil {
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return err
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	srcs, err := sources(ctx, o.issuer, o.tokenURL, specs)
	if err != nil {
		return err
	}

	// 1. The crypto bound, while the server is idle.
	ncpu := runtime.GOMAXPROCS(0)
	var bound float64
	if o.boundDuration > 0 {
		fmt.Fprintf(out, "crypto bound: RSA-2048 sign + RS256 verify per token on %d cores for %s (best of half-second samples) ...\n", ncpu, o.boundDuration)
		if bound, err = cryptoBound(o.boundDuration); err != nil {
			return fmt.Errorf("crypto bound: %w", err)
		}
		fmt.Fprintf(out, "crypto bound: %.0f tokens/s\n", bound)
	}

	// 2. Warm up: connections, the server's caches; every client must work.
	for i, s := range srcs {
		for range o.warmupPerClient {
			a, err := s.ts.Assertion(ctx)
			if err != nil {
				return fmt.Errorf("%s: %w", s.spec.Name, err)
			}
			if r := send(ctx, hc, o.tokenURL, append([]byte(formPrefix), a...)); !r.ok {
				// Say why, in the server's words.
				_, ferr := srcs[i].ts.Fetch(ctx)
				return fmt.Errorf("warm-up: client %s (%s) got %s: %v", s.spec.Name, s.spec.ClientID, r.key, ferr)
			}
		}
	}

	// 3. Pre-sign every assertion the window can use.
	rate := o.rateEstimate
	if rate <= 0 {
		rate = bound
	}
	if rate <= 0 {
		rate = 5000
	}
	n := int(math.Ceil(rate*o.duration.Seconds()*1.25)) + 4*o.concurrency
	if o.requests > 0 {
		n = min(n, o.requests)
	}
	t0 := time.Now()
	jobs, err := presign(ctx, srcs, n, o.presignLimit)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "pre-signed %d assertions in %s (%d clients: %s)\n", len(jobs), time.Since(t0).Round(time.Millisecond), len(srcs), mixNames(srcs))
	runtime.GC()

	// 4. The measured window.
	var cpu0, cpu1, rssStart, hwm1 float64
	var sampler *rssSampler
	if o.serverPID > 0 {
		if cpu0, err = procCPU(o.serverPID); err != nil {
			return fmt.Errorf("--server-pid: %w", err)
		}
		rssStart, _, _ = procMem(o.serverPID)
		sampler = sampleRSS(o.serverPID, 100*time.Millisecond)
	}
	self0 := selfCPU()
	busy0, busyErr := machineBusy()
	st := run(ctx, hc, o.tokenURL, jobs, o.concurrency, o.duration, o.requests)
	self1 := selfCPU()
	busy1, _ := machineBusy()
	var peak float64
	if o.serverPID > 0 {
		cpu1, _ = procCPU(o.serverPID)
		peak = sampler.Stop()
		_, hwm1, _ = procMem(o.serverPID)
	}

	// 5. Report.
	secs := st.elapsed.Seconds()
	tps := float64(st.tokens) / secs
	fmt.Fprintf(out, "\nissuer %s  token endpoint %s\n", o.issuer, o.tokenURL)
	fmt.Fprintf(out, "window %s, concurrency %d, GOMAXPROCS %d\n", st.elapsed.Round(time.Millisecond), o.concurrency, ncpu)
	switch {
	case st.exhausted:
		fmt.Fprintf(out, "note: the pre-signed assertions ran out before --duration; raise --rate\n")
	case st.capped:
		fmt.Fprintf(out, "note: stopped at --requests %d\n", o.requests)
	}
	fmt.Fprintf(out, "requests  %d\ntokens    %d  (%.0f tokens/s)\n", st.requests, st.tokens, tps)
	fmt.Fprintf(out, "latency   p50 %s  p90 %s  p99 %s  max %s\n", ms(st.percentile(.5)), ms(st.percentile(.9)), ms(st.percentile(.99)), ms(st.percentile(1)))
	if len(st.errors) > 0 {
		fmt.Fprintln(out, "errors by status and OAuth code:")
		for _, l := range st.errorLines() {
			fmt.Fprintln(out, l)
		}
	} else {
		fmt.Fprintln(out, "errors    none")
	}
	selfSecs := self1 - self0
	fmt.Fprintf(out, "load tool CPU %.2f s (%.0f%% of the machine's %d cores over the window)\n", selfSecs, 100*selfSecs/(secs*float64(ncpu)), ncpu)
	var serverCPU float64
	if o.serverPID > 0 {
		serverCPU = cpu1 - cpu0
		fmt.Fprintf(out, "server    CPU %.2f s (%.2f ms per token), RSS %.1f MiB at start, peak %.1f MiB in the window, VmHWM %.1f MiB\n",
			serverCPU, 1000*serverCPU/float64(max(st.tokens, 1)), rssStart, peak, hwm1)
	}
	others := math.NaN()
	if busyErr == nil {
		// What other processes took from the machine during the window.
		others = max(0, (busy1-busy0)-selfSecs-serverCPU)
		fmt.Fprintf(out, "other processes CPU %.2f s (%.0f%% of the machine)\n", others, 100*others/(secs*float64(ncpu)))
	}
	// The bound again, after the window: a different figure means the
	// machine was not quiet and every ratio is suspect.
	var bound2 float64
	if o.boundDuration > 0 {
		bound2, _ = cryptoBound(o.boundDuration)
		fmt.Fprintf(out, "crypto bound after the window: %.0f tokens/s (before: %.0f)\n", bound2, bound)
	}
	if (!math.IsNaN(others) && others > 0.1*secs*float64(ncpu)) || (bound2 > 0 && math.Abs(bound2-bound) > 0.15*bound) {
		fmt.Fprintln(out, "WARNING: the machine was busy with other work: the figures below are not reliable")
	}
	ratio, ratioAdj, eff := math.NaN(), math.NaN(), math.NaN()
	if bound > 0 {
		ratio = tps / bound
		// The bound assumes the server has every core; the load tool took
		// some of them during the window.
		share := min(selfSecs/(secs*float64(ncpu)), 0.95)
		ratioAdj = tps / (bound * (1 - share))
		fmt.Fprintf(out, "crypto bound %.0f tokens/s: measured/bound %.2f; adjusted for the load tool's CPU %.2f\n", bound, ratio, ratioAdj)
		if serverCPU > 0 && st.tokens > 0 {
			// CPU seconds the crypto needs per token over what the server spent.
			eff = (float64(ncpu) / bound) / (serverCPU / float64(st.tokens))
			fmt.Fprintf(out, "crypto share of the server's CPU per token %.2f\n", eff)
		}
	}
	fmt.Fprintf(out, "summary: driver=%s tokens_per_s=%.0f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f requests=%d errors=%s bound_per_s=%.0f bound_after_per_s=%.0f ratio=%s ratio_adj=%s cpu_eff=%s server_cpu_s=%.2f loadgen_cpu_s=%.2f other_cpu_s=%s rss_mib=%.1f hwm_mib=%.1f concurrency=%d cores=%d\n",
		o.driver, tps, msf(st.percentile(.5)), msf(st.percentile(.99)), msf(st.percentile(1)), st.requests, errorSummary(st.errors),
		bound, bound2, f2(ratio), f2(ratioAdj), f2(eff), serverCPU, selfSecs, f2(others), peak, hwm1, o.concurrency, ncpu)
	if st.tokens == 0 {
		return errors.New("no token was issued in the window")
	}
	return nil
}

func discover(ctx context.Context, hc *http.Client, issuer string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, client.MetadataURL(issuer), nil)
	if err != nil {
		return "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("discovery: %w (is the server running at %s?)", err, issuer)
	}
	defer resp.Body.Close()
	var m struct {
		Issuer        string `json:"issuer"`
		TokenEndpoint string `json:"token_endpoint"`
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("discovery: %s: %s", client.MetadataURL(issuer), resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		return "", fmt.Errorf("discovery: %w", err)
	}
	if m.Issuer != issuer {
		return "", fmt.Errorf("discovery: the server's issuer is %q, not %q (give it byte for byte)", m.Issuer, issuer)
	}
	return m.TokenEndpoint, nil
}

func mixNames(srcs []source) string {
	var parts []string
	for _, s := range srcs {
		parts = append(parts, fmt.Sprintf("%s x%d", s.spec.Name, s.spec.Weight))
	}
	return strings.Join(parts, ", ")
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", msf(d)) }

func msf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func f2(v float64) string {
	if math.IsNaN(v) {
		return "NA"
	}
	return fmt.Sprintf("%.2f", v)
}
