package server

import (
	"log/slog"
	"math"
	"runtime"
	"runtime/debug"

	"github.com/astral/idp/login/password"
)

// gcPercent is the collector's target while the heap is small: collect when the heap
// has grown to five times what was live. What this server keeps between requests is a
// few megabytes (caches, pools); nearly everything a request allocates is garbage by
// its end. At Go's default of 100 the collector runs several times a second under load
// and takes about a sixth of the token endpoint's CPU; at 400 it takes far less
// (README, Performance), for a few tens of megabytes more.
const gcPercent = 400

// gcBaseLimit is the soft memory limit's part for everything but password hashing.
const gcBaseLimit = 256 << 20

// tuneGC sets the collector for a server unless the environment chose (GOGC or
// GOMEMLIMIT, which Go's runtime reads itself). Password hashes are the one large
// allocation (argon2id takes its whole memory cost at once), and a burst of sign-ins
// keeps as many alive as the hasher lets run. The soft limit leaves room above
// gcBaseLimit for four rounds of them, so the collector does not run once a hash; past
// it the collector runs sooner instead of letting gcPercent multiply them. In a
// container the limit is at most nine tenths of its memory: the core count that sizes
// the hashes comes from the CPU quota, which says nothing about memory, and a high
// gcPercent must not grow the heap past what the container may use.
func tuneGC(lookupEnv func(string) (string, bool), hash password.Params, containerMemory func() (uint64, error)) {
	percent, limit, ok := gcSettings(lookupEnv, hash, containerMemory)
	if !ok {
		slog.Info("garbage collector as the environment sets it")
		return
	}
	debug.SetGCPercent(percent)
	debug.SetMemoryLimit(limit)
	slog.Info("garbage collector tuned (set GOGC or GOMEMLIMIT to choose)", "gc_percent", percent,
		"memory_limit_mib", limit>>20, "gomaxprocs", runtime.GOMAXPROCS(0))
}

// gcSettings is what tuneGC sets; ok is false when the environment chose.
func gcSettings(lookupEnv func(string) (string, bool), hash password.Params, containerMemory func() (uint64, error)) (percent int, limit int64, ok bool) {
	_, gogc := lookupEnv("GOGC")
	_, memLimit := lookupEnv("GOMEMLIMIT")
	if gogc || memLimit {
		return 0, 0, false
	}
	hashes := int64(password.MaxConcurrent()) * int64(hash.Memory) << 10
	limit = gcBaseLimit + 4*hashes
	if c, err := containerMemory(); err == nil && c > 0 && c < math.MaxInt64/10 {
		limit = min(limit, int64(c)/10*9)
	}
	percent = gcPercent
	if limit < gcBaseLimit {
		// A small container: what is left would not hold five times the heap.
		percent = 100
	}
	return percent, limit, true
}
