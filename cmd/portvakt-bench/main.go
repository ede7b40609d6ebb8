package main

import (
	"cmp"
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
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/portvakt/portvakt/internal/cryptobound"
	"github.com/portvakt/portvakt/pkg/client"
)

type options struct {
	issuer, tokenURL string
	devDir, mix      string
	concurrency      int
	duration         time.Duration
	rounds           int
	requests         int
	boundSample      time.Duration
	rateEstimate     float64
	serverPID        int
	driver           string
	presignLimit     time.Duration
	warmupPerClient  int
	wait             time.Duration
	cpuProfile       string
	reference        bool
	referenceStore   string
	churn            time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.issuer, "issuer", envOr("PORTVAKT_ISSUER", "http://127.0.0.1:8080/"), "the server's issuer URL (env PORTVAKT_ISSUER)")
	flag.StringVar(&o.tokenURL, "token-url", "", "token endpoint (default: discovered from the issuer's metadata)")
	flag.StringVar(&o.devDir, "dev-dir", ".portvakt-dev", "data directory of `portvakt serve --dev`: its PKI and the demo clients make the mix (ignored with --mix)")
	flag.StringVar(&o.mix, "mix", "", `JSON client mix: {"clients":[{"name","client_id","cert","key" | "p12","p12_password" | "key","kid", "scopes":[...], "consumer_org", "resources":[...], "weight"}]}`)
	flag.IntVar(&o.concurrency, "concurrency", 16, "concurrent connections (keep-alive)")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "load time, summed over the rounds (at most 100s: assertions live 120 s)")
	flag.IntVar(&o.rounds, "rounds", 0, "split the load into this many slices, each after a crypto bound sample (0: one per 3 s of --duration, at least 2)")
	flag.IntVar(&o.requests, "requests", 0, "stop after this many requests (0: no cap)")
	flag.DurationVar(&o.boundSample, "bound-sample", 400*time.Millisecond, "length of each crypto bound sample, taken before every round and after the last (0: no bound)")
	flag.Float64Var(&o.rateEstimate, "rate", 0, "tokens/s to pre-sign for (default: the crypto bound, which the server cannot exceed)")
	flag.IntVar(&o.serverPID, "server-pid", 0, "pid of the server when it runs on this machine: CPU seconds and memory from /proc")
	flag.StringVar(&o.driver, "driver", "unknown", "label for the summary line (the server's database driver)")
	flag.DurationVar(&o.presignLimit, "presign-limit", 60*time.Second, "stop pre-signing after this long")
	flag.IntVar(&o.warmupPerClient, "warmup", 5, "unmeasured requests per client before the rounds (connections, caches)")
	flag.DurationVar(&o.wait, "wait", 0, "wait up to this long for the server to answer discovery (a server just started)")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of this tool over the rounds to this file (the bound samples carry the label phase=bound: go tool pprof -tagignore phase=bound leaves them out)")
	flag.DurationVar(&o.churn, "churn", 0, "during the rounds, make one self-service change per this interval (the dev provider grants or removes one org's access to demo:read) and time the first token after each (0: none; needs --dev-dir)")
	flag.BoolVar(&o.reference, "reference", false, "measure the reference token endpoint instead of a server (see reference.go): only the grant's crypto and net/http, started by this tool on loopback; --issuer, --dev-dir, --mix, --server-pid and --driver are ignored")
	flag.StringVar(&o.referenceStore, "reference-store", "", "with --reference: also do the replay check, the atomic issued-token insert of the server's store, in \"sqlite\" (a file of the reference's own) or \"postgres\" (the DSN in $"+referenceDSNEnv+")")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if len(os.Args) > 1 && os.Args[1] == seedCommand {
		err = runSeed(ctx, os.Args[2:], os.Stdout)
	} else if (len(os.Args) == 3 || len(os.Args) == 4) && os.Args[1] == referenceCommand {
		storeDriver := "" // reference-server DIR [STORE]
		if len(os.Args) == 4 {
			storeDriver = os.Args[3]
		}
		err = serveReference(ctx, os.Args[2], storeDriver)
	} else {
		flag.Parse()
		switch {
		case o.referenceStore != "" && !o.reference:
			err = errors.New("--reference-store needs --reference")
		case o.reference:
			err = benchReference(ctx, o, os.Stdout)
		default:
			err = bench(ctx, o, os.Stdout)
		}
	}
	if err != nil {
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

// Rounds and the assertions' lifetime.
const (
	// roundLength is the load slice --rounds 0 aims at: short enough that
	// the machine's speed hardly drifts within one, long enough that the
	// bound samples cost little of the wall time.
	roundLength = 3 * time.Second
	// wallMargin is kept free of the assertions' lifetime for the drains
	// at the end of each slice (requests in flight) and exp's whole seconds.
	wallMargin = 5 * time.Second
)

// planRounds is the number of rounds for --duration d, --rounds n (0: one
// per roundLength of load, at least 2) and --bound-sample sample. The
// assertions are signed before the first round and must outlive the last:
// the load, a bound sample before each round and one after the last.
func planRounds(d time.Duration, n int, sample time.Duration) (int, error) {
	if n < 0 || sample < 0 {
		return 0, errors.New("--rounds and --bound-sample must not be negative")
	}
	if n == 0 {
		n = max(2, int((d+roundLength-1)/roundLength))
	}
	wall := d + time.Duration(n+1)*sample
	if wall > client.MaxAssertionLifetime-wallMargin {
		return 0, fmt.Errorf("--duration %s in %d rounds with a %s bound sample before each and after the last takes %s, too close to the %s the pre-signed assertions live (%s must stay to spare): shorten --duration or --bound-sample, or use fewer --rounds",
			d, n, sample, wall, client.MaxAssertionLifetime, wallMargin)
	}
	return n, nil
}

// cpuSnapshot is the CPU seconds so far of the server (0 without a pid),
// this tool and the whole machine.
type cpuSnapshot struct {
	server, self, busy float64
	busyErr            error
}

func snapshot(serverPID int) cpuSnapshot {
	var c cpuSnapshot
	if serverPID > 0 {
		c.server, _ = procCPU(serverPID)
	}
	c.self = selfCPU()
	c.busy, c.busyErr = machineBusy()
	return c
}

// round is one load slice and the bound samples either side of it.
type round struct {
	st            *stats
	before, after float64 // bound samples' rates (0: none)
}

func bench(ctx context.Context, o options, out io.Writer) error {
	if o.concurrency < 1 {
		return errors.New("--concurrency must be at least 1")
	}
	if o.duration <= 0 || o.duration > 100*time.Second {
		return errors.New("--duration must be in (0, 100s]: pre-signed assertions expire 120 s after signing")
	}
	rounds, err := planRounds(o.duration, o.rounds, o.boundSample)
	if err != nil {
		return err
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
	// Discovery is one request: net/http is fine for it.
	hc := &http.Client{Timeout: requestTimeout}
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
	tc, err := newTokenClient(o.tokenURL, o.concurrency)
	if err != nil {
		return err
	}
	srcs, err := sources(ctx, o.issuer, o.tokenURL, specs)
	if err != nil {
		return err
	}

	// 1. Warm up: connections, the server's caches; every client must work.
	p := tc.poster()
	for i, s := range srcs {
		for range o.warmupPerClient {
			a, err := s.ts.Assertion(ctx)
			if err != nil {
				p.release()
				return fmt.Errorf("%s: %w", s.spec.Name, err)
			}
			if r := p.send(append([]byte(formPrefix), a...)); !r.ok {
				p.release()
				// Say why, in the server's words.
				_, ferr := srcs[i].ts.Fetch(ctx)
				return fmt.Errorf("warm-up: client %s (%s) got %s: %v", s.spec.Name, s.spec.ClientID, r.key, ferr)
			}
		}
	}
	p.release()

	// 2. Pre-sign every assertion the rounds can use, for a rate the server
	// cannot exceed: the crypto bound (a first estimate, best of four
	// samples: a slow moment would leave the rounds short of assertions),
	// with room for the machine getting faster.
	ncpu := runtime.GOMAXPROCS(0)
	var meter *cryptobound.Meter
	if o.boundSample > 0 {
		if meter, err = cryptobound.NewMeter(); err != nil {
			return fmt.Errorf("crypto bound: %w", err)
		}
	}
	rate := o.rateEstimate
	if rate <= 0 && meter != nil {
		for range 4 {
			s, err := meter.For(o.boundSample)
			if err != nil {
				return fmt.Errorf("crypto bound: %w", err)
			}
			rate = max(rate, s.Rate())
		}
		fmt.Fprintf(out, "crypto bound estimate: %.0f tokens/s (RSA-2048 sign + RS256 verify per token on %d cores), to size the pre-signing\n", rate, ncpu)
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
	// Collect the pre-signing's garbage and hand it back to the OS now:
	// the runtime's scavenger would otherwise do it during the load.
	debug.FreeOSMemory()

	// 3. The rounds: a bound sample with the server idle, then a slice of
	// load; one more sample after the last. The machine's speed drifts; so
	// the bound is measured across the same period as the load.
	slice := o.duration / time.Duration(rounds)
	if meter != nil {
		fmt.Fprintf(out, "%d rounds of %s load, each after a %s crypto bound sample, and a sample after the last\n", rounds, slice, o.boundSample)
	} else {
		fmt.Fprintf(out, "%d rounds of %s load (no crypto bound)\n", rounds, slice)
	}
	var rssStart, peak, hwm float64
	var sampler *rssSampler
	if o.serverPID > 0 {
		if _, err := procCPU(o.serverPID); err != nil {
			return fmt.Errorf("--server-pid: %w", err)
		}
		rssStart, _, _ = procMem(o.serverPID)
		sampler = sampleRSS(o.serverPID, 100*time.Millisecond)
	}
	stopProfile, err := startProfile(o.cpuProfile)
	if err != nil {
		return err
	}
	var ch *churn
	if o.churn > 0 {
		if ch, err = newChurn(ctx, o.churn, o.issuer, o.tokenURL, o.devDir); err != nil {
			return err
		}
	}
	f := newFeed(jobs, o.requests)
	var (
		total               stats
		samples             []cryptobound.Sample
		done                []round
		serverCPU, selfSecs float64
		busySecs            float64
		busyErr             error
		sampleErr           error
	)
	measureBound := func() float64 {
		if meter == nil || sampleErr != nil {
			return 0
		}
		var s cryptobound.Sample
		if s, sampleErr = meter.For(o.boundSample); sampleErr != nil {
			return 0
		}
		samples = append(samples, s)
		return s.Rate()
	}
	wallStart := time.Now()
	before := measureBound()
	for r := range rounds {
		left := f.limit - f.used()
		stopChurn := func() {}
		if ch != nil {
			stopChurn = ch.start(ctx)
		}
		c0 := snapshot(o.serverPID)
		st := run(ctx, tc, f, o.concurrency, slice, left/(rounds-r))
		c1 := snapshot(o.serverPID)
		stopChurn()
		serverCPU += c1.server - c0.server
		selfSecs += c1.self - c0.self
		busySecs += c1.busy - c0.busy
		busyErr = cmp.Or(busyErr, c0.busyErr, c1.busyErr)
		total.add(st)
		after := measureBound()
		done = append(done, round{st: st, before: before, after: after})
		before = after
		if ctx.Err() != nil || f.done() != "" {
			break
		}
	}
	wall := time.Since(wallStart)
	stopProfile()
	if o.serverPID > 0 {
		peak = sampler.Stop()
		_, hwm, _ = procMem(o.serverPID)
	}
	if sampleErr != nil {
		return fmt.Errorf("crypto bound: %w", sampleErr)
	}
	slices.Sort(total.latencies)

	// 4. Report.
	secs := total.elapsed.Seconds()
	tps := total.tps()
	fmt.Fprintf(out, "\nround  bound/s before  tokens/s  load s  bound/s after  ratio\n")
	for i, r := range done {
		ratio := math.NaN()
		if r.before > 0 && r.after > 0 {
			ratio = r.st.tps() / ((r.before + r.after) / 2)
		}
		fmt.Fprintf(out, "%5d  %14.0f  %8.0f  %6.2f  %13.0f  %5s\n", i+1, r.before, r.st.tps(), r.st.elapsed.Seconds(), r.after, f2(ratio))
	}
	fmt.Fprintf(out, "\nissuer %s  token endpoint %s\n", o.issuer, o.tokenURL)
	fmt.Fprintf(out, "load %s over %d of %d rounds (wall time %s with %d bound samples), concurrency %d, GOMAXPROCS %d\n",
		total.elapsed.Round(time.Millisecond), len(done), rounds, wall.Round(time.Millisecond), len(samples), o.concurrency, ncpu)
	last := done[len(done)-1].st
	stoppedEarly := len(done) < rounds || last.elapsed < slice
	switch reason := f.done(); {
	case ctx.Err() != nil:
		fmt.Fprintf(out, "note: interrupted\n")
	case reason == "capped":
		fmt.Fprintf(out, "note: stopped at --requests %d\n", o.requests)
	case reason == "exhausted" && stoppedEarly:
		fmt.Fprintf(out, "note: the pre-signed assertions ran out before --duration; raise --rate\n")
	case reason == "expired":
		fmt.Fprintf(out, "note: stopped early: the next pre-signed assertion was about to expire (pre-signing and the rounds took longer than it lives); lower --presign-limit or --duration\n")
	}
	fmt.Fprintf(out, "requests  %d\ntokens    %d  (%.0f tokens/s over the load slices)\n", total.requests, total.tokens, tps)
	fmt.Fprintf(out, "latency   p50 %s  p90 %s  p99 %s  max %s\n", ms(total.percentile(.5)), ms(total.percentile(.9)), ms(total.percentile(.99)), ms(total.percentile(1)))
	if len(total.errors) > 0 {
		fmt.Fprintln(out, "errors by status and OAuth code:")
		for _, l := range total.errorLines() {
			fmt.Fprintln(out, l)
		}
	} else {
		fmt.Fprintln(out, "errors    none")
	}
	selfPerReq := 1e6 * selfSecs / float64(max(total.requests, 1))
	fmt.Fprintf(out, "load tool CPU %.2f s (%.0f%% of the machine's %d cores over the load slices; %.0f µs per request)\n",
		selfSecs, 100*selfSecs/(secs*float64(ncpu)), ncpu, selfPerReq)
	if o.serverPID > 0 {
		fmt.Fprintf(out, "server    CPU %.2f s over the load slices (%.2f ms per token), RSS %.1f MiB at start, peak %.1f MiB in the rounds, VmHWM %.1f MiB\n",
			serverCPU, 1000*serverCPU/float64(max(total.tokens, 1)), rssStart, peak, hwm)
	}
	others := math.NaN()
	if busyErr == nil {
		// What other processes took from the machine during the load.
		others = max(0, busySecs-selfSecs-serverCPU)
		fmt.Fprintf(out, "other processes CPU %.2f s (%.0f%% of the machine over the load slices)\n", others, 100*others/(secs*float64(ncpu)))
	}
	bound, bmin, bmax := cryptobound.Pooled(samples), math.NaN(), math.NaN()
	if lo, hi, ok := cryptobound.Range(samples); ok {
		bmin, bmax = lo, hi
		fmt.Fprintf(out, "crypto bound %.0f tokens/s pooled over %d samples of %s (min %.0f, max %.0f)\n", bound, len(samples), o.boundSample, bmin, bmax)
	}
	if (!math.IsNaN(others) && others > 0.1*secs*float64(ncpu)) || bmax > 1.15*bmin {
		fmt.Fprintln(out, "WARNING: the machine was busy with other work or its speed drifted: the figures below are not reliable")
	}
	ratio, ratioAdj, eff := math.NaN(), math.NaN(), math.NaN()
	if bound > 0 && secs > 0 {
		ratio = tps / bound
		// The bound assumes the server has every core; the load tool took
		// some of them during the load slices.
		share := min(selfSecs/(secs*float64(ncpu)), 0.95)
		ratioAdj = tps / (bound * (1 - share))
		fmt.Fprintf(out, "measured/bound %.2f; adjusted for the load tool's CPU %.2f\n", ratio, ratioAdj)
		if serverCPU > 0 && total.tokens > 0 {
			// CPU seconds the crypto needs per token over what the server spent.
			eff = (float64(ncpu) / bound) / (serverCPU / float64(total.tokens))
			fmt.Fprintf(out, "crypto share of the server's CPU per token %.2f\n", eff)
		}
	}
	churnFields := ""
	if ch != nil {
		churnFields = ch.report(out)
	}
	fmt.Fprintf(out, "summary: driver=%s tokens_per_s=%.0f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f requests=%d errors=%s bound_per_s=%.0f bound_min_per_s=%s bound_max_per_s=%s rounds=%d ratio=%s ratio_adj=%s cpu_eff=%s server_cpu_s=%.2f loadgen_cpu_s=%.2f loadgen_us_per_req=%.0f other_cpu_s=%s rss_mib=%.1f hwm_mib=%.1f concurrency=%d cores=%d%s\n",
		o.driver, tps, msf(total.percentile(.5)), msf(total.percentile(.99)), msf(total.percentile(1)), total.requests, errorSummary(total.errors),
		bound, f0(bmin), f0(bmax), len(done), f2(ratio), f2(ratioAdj), f2(eff), serverCPU, selfSecs, selfPerReq, f2(others), peak, hwm, o.concurrency, ncpu, churnFields)
	if total.tokens == 0 {
		return errors.New("no token was issued in the rounds")
	}
	return nil
}

// startProfile starts a CPU profile into path ("" does nothing) and returns
// what stops it.
func startProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
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

func f0(v float64) string {
	if math.IsNaN(v) {
		return "NA"
	}
	return fmt.Sprintf("%.0f", v)
}

func f2(v float64) string {
	if math.IsNaN(v) {
		return "NA"
	}
	return fmt.Sprintf("%.2f", v)
}
