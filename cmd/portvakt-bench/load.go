package main

import (
	"context"
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portvakt/portvakt/pkg/client"
)

const formPrefix = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion="

// job is one pre-signed token request.
type job struct {
	src  int
	body []byte
	// sendBy is the last moment the assertion is still valid (with a
	// margin): it was signed to live client.MaxAssertionLifetime.
	sendBy time.Time
}

// expiryMargin keeps a job from being sent close to its exp: exp is in whole
// seconds (truncated) and the request takes a moment to arrive.
const expiryMargin = 3 * time.Second

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
				signed := time.Now()
				a, err := srcs[src].ts.Assertion(ctx)
				if err != nil {
					once.Do(func() { firstErr = fmt.Errorf("%s: sign: %w", srcs[src].spec.Name, err) })
					return
				}
				jobs[i] = job{src: src, body: append([]byte(formPrefix), a...),
					sendBy: signed.Add(client.MaxAssertionLifetime - expiryMargin)}
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
	key string // "400 invalid_grant", "transport error", ...
}

// feed hands out the pre-signed jobs, each once, across the rounds.
type feed struct {
	jobs   []job
	limit  int  // how many may be sent: len(jobs), or --requests when lower
	capped bool // limit is --requests
	next   atomic.Int64
	// expired is set when the next job's assertion is about to expire: the
	// load stops rather than send assertions the server must refuse.
	expired atomic.Bool
}

func newFeed(jobs []job, requests int) *feed {
	f := &feed{jobs: jobs, limit: len(jobs)}
	if requests > 0 && requests <= len(jobs) {
		f.limit, f.capped = requests, true
	}
	return f
}

// used is how many jobs were handed out.
func (f *feed) used() int { return int(min(f.next.Load(), int64(f.limit))) }

// done says why no more load can be sent, or "" while it can.
func (f *feed) done() string {
	switch {
	case f.expired.Load():
		return "expired"
	case f.used() < f.limit:
		return ""
	case f.capped:
		return "capped"
	}
	return "exhausted"
}

// stats are the results of one load slice, or of all of them added up.
type stats struct {
	requests, tokens int
	elapsed          time.Duration // load only: from the slice's start until its last request came back
	errors           map[string]int
	latencies        []time.Duration // sorted once all slices are in
}

func (s *stats) tps() float64 {
	if s.elapsed <= 0 {
		return 0
	}
	return float64(s.tokens) / s.elapsed.Seconds()
}

// add adds a slice's results to s.
func (s *stats) add(o *stats) {
	s.requests += o.requests
	s.tokens += o.tokens
	s.elapsed += o.elapsed
	s.latencies = append(s.latencies, o.latencies...)
	if s.errors == nil {
		s.errors = map[string]int{}
	}
	for k, v := range o.errors {
		s.errors[k] += v
	}
}

func (s *stats) percentile(q float64) time.Duration {
	if len(s.latencies) == 0 {
		return 0
	}
	i := int(float64(len(s.latencies))*q+0.999999) - 1
	return s.latencies[max(0, min(i, len(s.latencies)-1))]
}

// run is one load slice: concurrency workers send jobs from f until d has
// passed or f is done; requests in flight at the end are waited for and
// counted, so the server is idle when run returns. expect (how many requests
// the slice may send) sizes the buffers, so the slice does not grow them.
func run(ctx context.Context, c *tokenClient, f *feed, concurrency int, d time.Duration, expect int) *stats {
	type local struct {
		lat    []time.Duration
		tokens int
		errs   map[string]int
	}
	locals := make([]local, concurrency)
	perWorker := expect/concurrency + 16
	start := time.Now()
	end := start.Add(d)
	var wg sync.WaitGroup
	for w := range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := c.poster()
			defer p.release()
			l := &locals[w]
			l.errs = map[string]int{}
			l.lat = make([]time.Duration, 0, perWorker)
			for {
				t0 := time.Now()
				if t0.After(end) || ctx.Err() != nil || f.expired.Load() {
					return
				}
				i := int(f.next.Add(1) - 1)
				if i >= f.limit {
					return
				}
				j := &f.jobs[i]
				if t0.After(j.sendBy) {
					f.expired.Store(true)
					return
				}
				o := p.send(j.body)
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
