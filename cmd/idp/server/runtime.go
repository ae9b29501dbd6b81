package server

import (
	"log/slog"
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
// it the collector runs sooner instead of letting gcPercent multiply them.
func tuneGC(lookupEnv func(string) (string, bool), hash password.Params) {
	_, gogc := lookupEnv("GOGC")
	_, limit := lookupEnv("GOMEMLIMIT")
	if gogc || limit {
		slog.Info("garbage collector as the environment sets it")
		return
	}
	hashes := int64(password.MaxConcurrent()) * int64(hash.Memory) << 10
	mem := gcBaseLimit + 4*hashes
	debug.SetGCPercent(gcPercent)
	debug.SetMemoryLimit(mem)
	slog.Info("garbage collector tuned (set GOGC or GOMEMLIMIT to choose)", "gc_percent", gcPercent,
		"memory_limit_mib", mem>>20, "gomaxprocs", runtime.GOMAXPROCS(0))
}
