package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const formPrefix = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion="

// job is one pre-signed token request.
type job struct {
	src  int
	body []byte
}

// schedule interleaves the sources by weight: weights 2,2,1 give 0,1,2,0,1.
func schedule(srcs []source) []int {
	var maxW int
	for _, s := range srcs {
		maxW = max(maxW, s.spec.Weight)
	}
	var seq []int
	for k := range maxW {
		for i, s := range srcs {
			if s.spec.Weight > k {
				seq = append(seq, i)
			}
		}
	}
	return seq
}

// presign signs n assertions on all cores, following the weighted schedule,
// and stops early at limit (assertions live 120 s: the last must still be
// valid when it is sent). It returns the jobs signed, in schedule order.
func presign(ctx context.Context, srcs []source, n int, limit time.Duration) ([]job, error) {
	seq := schedule(srcs)
	jobs := make([]job, n)
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	deadline := time.Now().Add(limit)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if time.Now().After(deadline) || ctx.Err() != nil {
					return
				}
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				src := seq[i%len(seq)]
				a, err := srcs[src].ts.Assertion(ctx)
				if err != nil {
					once.Do(func() { firstErr = fmt.Errorf("%s: sign: %w", srcs[src].spec.Name, err) })
					return
				}
				jobs[i] = job{src: src, body: append([]byte(formPrefix), a...)}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	// Every index below the counter was signed to the end (workers finish
	// the one they hold); cut at the first gap to be safe.
	done := min(int(next.Load()), n)
	for i := range done {
		if jobs[i].body == nil {
			done = i
			break
		}
	}
	return jobs[:done], nil
}

// outcome is what one request gave.
type outcome struct {
	ok  bool
	key string // "400 invalid_grant", "transport", ...
}

func send(ctx context.Context, hc *http.Client, tokenURL string, body []byte) outcome {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL, bytes.NewReader(body))
	if err != nil {
		return outcome{key: "request: " + err.Error()}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := hc.Do(req)
	if err != nil {
		return outcome{key: "transport error"}
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if err != nil {
		return outcome{key: "transport error (body)"}
	}
	if resp.StatusCode == http.StatusOK && bytes.Contains(b, []byte(`"access_token"`)) {
		return outcome{ok: true}
	}
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	_ = json.Unmarshal(b, &e)
	if e.Error == "" {
		e.Error = "(no oauth error)"
	}
	return outcome{key: fmt.Sprintf("%d %s", resp.StatusCode, e.Error)}
}

// stats are the measured window's results.
type stats struct {
	requests, tokens int
	elapsed          time.Duration
	errors           map[string]int
	latencies        []time.Duration // sorted
	exhausted        bool            // the pre-signed assertions ran out before the duration
	capped           bool            // --requests was reached
}

func (s *stats) percentile(q float64) time.Duration {
	if len(s.latencies) == 0 {
		return 0
	}
	i := int(float64(len(s.latencies))*q+0.999999) - 1
	return s.latencies[max(0, min(i, len(s.latencies)-1))]
}

// run sends jobs on concurrency workers until d has passed or the jobs are
// used up (each once).
func run(ctx context.Context, hc *http.Client, tokenURL string, jobs []job, concurrency int, d time.Duration, cap int) *stats {
	var next atomic.Int64
	type local struct {
		lat    []time.Duration
		tokens int
		errs   map[string]int
	}
	locals := make([]local, concurrency)
	limit := len(jobs)
	capped := cap > 0 && cap <= limit
	if capped {
		limit = cap
	}
	start := time.Now()
	end := start.Add(d)
	var wg sync.WaitGroup
	for w := range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := &locals[w]
			l.errs = map[string]int{}
			l.lat = make([]time.Duration, 0, limit/concurrency+16)
			for {
				t0 := time.Now()
				if t0.After(end) || ctx.Err() != nil {
					return
				}
				i := int(next.Add(1) - 1)
				if i >= limit {
					return
				}
				o := send(ctx, hc, tokenURL, jobs[i].body)
				l.lat = append(l.lat, time.Since(t0))
				if o.ok {
					l.tokens++
				} else {
					l.errs[o.key]++
				}
			}
		}()
	}
	wg.Wait()
	s := &stats{elapsed: time.Since(start), errors: map[string]int{}}
	for _, l := range locals {
		s.latencies = append(s.latencies, l.lat...)
		s.tokens += l.tokens
		for k, v := range l.errs {
			s.errors[k] += v
		}
	}
	s.requests = len(s.latencies)
	slices.Sort(s.latencies)
	used := int(min(next.Load(), int64(limit)))
	s.capped = capped && used >= limit
	s.exhausted = !capped && used >= len(jobs) && s.elapsed < d
	return s
}

func (s *stats) errorLines() []string {
	var out []string
	for k, v := range s.errors {
		out = append(out, fmt.Sprintf("%7d  %s", v, k))
	}
	sort.Strings(out)
	return out
}

func errorSummary(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%s:%d", strings.ReplaceAll(k, " ", "_"), v))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}
