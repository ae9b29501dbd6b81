package server

// The load run: for client_credentials and refresh, find the peak throughput (closed
// loop, as BenchmarkEndpoints), then offer 70 % of it open-loop — requests start on a
// fixed schedule whether or not earlier ones have finished — and measure latency from
// each request's scheduled start (so a stall is not hidden by the driver waiting for
// it) and the server's Go heap and process RSS after a full GC, before and after, to
// show that memory does not grow with the requests served.
//
//	go test -run '^$' -bench 'Load' ./cmd/idp/server
//
// It runs on wall time, not b.N. IDP_LOAD_SECONDS (default 10) sets the measured
// window, IDP_LOAD_FRACTION (default 0.7) the share of the peak offered.

import (
	"bytes"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	loadWorkers  = 64              // open loop: requests that may be in flight at once
	loadPeakTime = 3 * time.Second // closed loop that finds the peak
	loadWarmup   = time.Second     // open loop at the target rate before measuring
)

func loadSeconds() time.Duration {
	if v, err := strconv.ParseFloat(os.Getenv("IDP_LOAD_SECONDS"), 64); err == nil && v > 0 {
		return time.Duration(v * float64(time.Second))
	}
	return 10 * time.Second
}

func loadFraction() float64 {
	if v, err := strconv.ParseFloat(os.Getenv("IDP_LOAD_FRACTION"), 64); err == nil && v > 0 && v <= 1 {
		return v
	}
	return 0.7
}

// loadOp is one request by worker w (each worker owns its state, e.g. a refresh chain).
type loadOp func(w int) error

// closedLoop runs workers that each send the next request as soon as the previous one
// is answered, for d; it returns the requests answered per second.
func closedLoop(workers int, d time.Duration, op loadOp) (float64, error) {
	var n atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				if err := op(w); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	return float64(n.Load()) / time.Since(start).Seconds(), firstErr
}

// loadRecorder holds the latencies of an open-loop run. It is allocated before the
// "before" memory snapshot, so that it does not count as growth.
type loadRecorder struct {
	n        atomic.Int64
	latency  []time.Duration // from the scheduled start
	service  []time.Duration // from the actual start
	errors   atomic.Int64
	once     sync.Once
	firstErr error
	elapsed  time.Duration
}

func newLoadRecorder(rate float64, d time.Duration) *loadRecorder {
	total := int(rate * d.Seconds())
	return &loadRecorder{latency: make([]time.Duration, total), service: make([]time.Duration, total)}
}

// done sorts the recorded latencies in place and returns them.
func (r *loadRecorder) done() (latency, service []time.Duration) {
	n := int(r.n.Load())
	latency, service = r.latency[:n], r.service[:n]
	slices.Sort(latency)
	slices.Sort(service)
	return latency, service
}

// openLoop schedules len(r.latency) requests at rate per second and runs them on up to
// workers goroutines; a request whose worker is not free waits, and that wait counts.
func openLoop(rate float64, workers int, op loadOp, r *loadRecorder) {
	total := len(r.latency)
	interval := time.Duration(float64(time.Second) / rate)
	due := make(chan time.Time, total)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for t := range due {
				start := time.Now()
				err := op(w)
				end := time.Now()
				if err != nil {
					r.errors.Add(1)
					r.once.Do(func() { r.firstErr = err })
					continue
				}
				i := r.n.Add(1) - 1
				r.latency[i], r.service[i] = end.Sub(t), end.Sub(start)
			}
		}()
	}
	start := time.Now()
	for i := range total {
		t := start.Add(time.Duration(i) * interval)
		if wait := time.Until(t); wait > 0 {
			time.Sleep(wait)
		}
		due <- t
	}
	close(due)
	wg.Wait()
	r.elapsed = time.Since(start)
}

// memSnapshot is the live Go heap and the process's resident memory after a full GC.
type memSnapshot struct {
	HeapAlloc  uint64 `json:"heap_alloc"`
	HeapInuse  uint64 `json:"heap_inuse"`
	RSS        uint64 `json:"rss"` // 0 when unknown
	Goroutines int    `json:"goroutines"`
}

func snapshotMemory() memSnapshot {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s := memSnapshot{HeapAlloc: ms.HeapAlloc, HeapInuse: ms.HeapInuse, Goroutines: runtime.NumGoroutine()}
	if raw, err := os.ReadFile("/proc/self/statm"); err == nil {
		if f := bytes.Fields(raw); len(f) > 1 {
			if pages, err := strconv.ParseUint(string(f[1]), 10, 64); err == nil {
				s.RSS = pages * uint64(os.Getpagesize())
			}
		}
	}
	return s
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// loadCache keeps each sub-benchmark's result: the run is on wall time, and the
// testing package may call a benchmark function more than once.
var (
	loadCacheMu sync.Mutex
	loadCache   = map[string]func(*testing.B){}
)

// BenchmarkLoad: backend × IDP_SIGNING_ALG × {client_credentials, refresh}.
func BenchmarkLoad(b *testing.B) {
	for _, backend := range backends() {
		b.Run(backend, func(b *testing.B) {
			for _, alg := range benchAlgs {
				b.Run(alg, func(b *testing.B) {
					var e *benchEnv
					env := func() *benchEnv {
						if e == nil {
							e = newBenchEnv(b, backend, alg)
						}
						return e
					}
					b.Run("client_credentials", func(b *testing.B) {
						runLoad(b, env, func() (loadOp, error) {
							e := env()
							return func(int) error { return e.clientCredentials() }, nil
						})
					})
					b.Run("refresh", func(b *testing.B) {
						runLoad(b, env, func() (loadOp, error) {
							e := env()
							chains := make([]string, loadWorkers)
							for w := range chains {
								rt, err := e.takeChain()
								if err != nil {
									return nil, err
								}
								chains[w] = rt
							}
							b.Cleanup(func() {
								for _, rt := range chains {
									e.putChain(rt)
								}
							})
							return func(w int) error {
								next, err := e.refresh(chains[w])
								if err == nil {
									chains[w] = next
								}
								return err
							}, nil
						})
					})
				})
			}
		})
	}
}

func runLoad(b *testing.B, env func() *benchEnv, prepare func() (loadOp, error)) {
	loadCacheMu.Lock()
	report, done := loadCache[b.Name()]
	loadCacheMu.Unlock()
	if done {
		report(b)
		return
	}
	op, err := prepare()
	if err != nil {
		b.Fatal(err)
	}
	peak, err := closedLoop(benchParallelism*runtime.GOMAXPROCS(0), loadPeakTime, op)
	if err != nil {
		b.Fatal("peak: ", err)
	}
	rate := peak * loadFraction()
	// Every worker opens its keep-alive connection now, so that the connections (and
	// their buffers) are in the "before" snapshot and do not count as growth.
	if _, err := closedLoop(loadWorkers, 300*time.Millisecond, op); err != nil {
		b.Fatal("connections: ", err)
	}
	warm := newLoadRecorder(rate, loadWarmup)
	if openLoop(rate, loadWorkers, op, warm); warm.firstErr != nil {
		b.Fatal("warm-up: ", warm.firstErr)
	}
	r := newLoadRecorder(rate, loadSeconds())
	before, err := env().serverMemory()
	if err != nil {
		b.Fatal(err)
	}
	cpu0 := env().cpuNow()
	openLoop(rate, loadWorkers, op, r)
	use := env().cpuSince(cpu0)
	after, err := env().serverMemory()
	if err != nil {
		b.Fatal(err)
	}
	errors := r.errors.Load()
	if r.firstErr != nil {
		b.Errorf("%d of %d requests failed; the first: %v", errors, len(r.latency), r.firstErr)
	}
	latency, service := r.done()
	served := float64(len(latency))
	achieved := served / r.elapsed.Seconds()
	b.Logf("peak %.0f/s; offered %.0f/s (%.0f %%) for %s: served %.0f/s, p50 %.2f ms, p95 %.2f ms, p99 %.2f ms, max %.2f ms; "+
		"heap %.1f → %.1f MiB, RSS %.1f → %.1f MiB, goroutines %d → %d, after %d requests",
		peak, rate, 100*loadFraction(), r.elapsed.Round(time.Millisecond), achieved,
		ms(percentile(latency, .5)), ms(percentile(latency, .95)), ms(percentile(latency, .99)),
		ms(percentile(latency, 1)), mib(before.HeapAlloc), mib(after.HeapAlloc), mib(before.RSS), mib(after.RSS),
		before.Goroutines, after.Goroutines, len(latency))
	report = func(b *testing.B) {
		b.ReportMetric(1e9/achieved, "ns/op")
		b.ReportMetric(peak, "peak-ops/s")
		b.ReportMetric(rate, "offered-ops/s")
		b.ReportMetric(achieved, "ops/s")
		b.ReportMetric(ms(percentile(latency, .50)), "p50-ms")
		b.ReportMetric(ms(percentile(latency, .95)), "p95-ms")
		b.ReportMetric(ms(percentile(latency, .99)), "p99-ms")
		b.ReportMetric(ms(percentile(service, .99)), "svc-p99-ms")
		b.ReportMetric(float64(errors), "errors")
		b.ReportMetric(mib(before.HeapAlloc), "heap-before-MiB")
		b.ReportMetric(mib(after.HeapAlloc), "heap-after-MiB")
		b.ReportMetric((float64(after.HeapAlloc)-float64(before.HeapAlloc))/served, "heap-growth-B/req")
		if before.RSS > 0 {
			b.ReportMetric(mib(before.RSS), "rss-before-MiB")
			b.ReportMetric(mib(after.RSS), "rss-after-MiB")
		}
		use.report(b, served)
	}
	loadCacheMu.Lock()
	loadCache[b.Name()] = report
	loadCacheMu.Unlock()
	report(b)
}
