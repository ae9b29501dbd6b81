package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"testing"
	"time"

	"github.com/astral/idp/cmd/idp/config"
)

// With benchProcessEnv set, the benchmarks run the server in a process of its own,
// this test binary started again with benchServeEnv set, so that its CPU time, memory
// and profile are the server's alone: the load generator, which on a real deployment
// runs on other machines, is measured apart (loadgen-cpu-µs/op).

const (
	// benchProcessEnv asks for the server in a process of its own.
	benchProcessEnv = "IDP_BENCH_SERVER_PROCESS"
	// benchServeEnv makes TestMain serve instead of running tests.
	benchServeEnv = "IDP_BENCH_SERVE"
	// benchMemoryEnv is the loopback address where the server process answers
	// /memory (memSnapshot after a full collection) for the load run.
	benchMemoryEnv = "IDP_BENCH_MEMORY_ADDR"
	// benchProfileEnv names a file for the server process's CPU profile, written when
	// it stops: IDP_BENCH_CPUPROFILE=/tmp/server.prof go test -bench ….
	benchProfileEnv = "IDP_BENCH_CPUPROFILE"
)

func TestMain(m *testing.M) {
	if os.Getenv(benchServeEnv) != "" {
		if err := serveBench(); err != nil {
			fmt.Fprintln(os.Stderr, "benchmark server:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// benchOptions are DefaultOptions with the benchmark's deviations, none of which
// changes the per-request work: codes live 10 minutes (codes are made before the
// timed part), and the per-IP sign-in limit is lifted (every benchmark browser is
// 127.0.0.1; the counter is still written on each attempt). The environment is not
// read, so the collector is tuned as in production.
func benchOptions() Options {
	opts := DefaultOptions()
	opts.LookupEnv = func(string) (string, bool) { return "", false }
	opts.Lifetimes.Code = 10 * time.Minute
	opts.PasswordLimits.AttemptsPerIP = math.MaxInt64
	return opts
}

// serveBench is the server process: `idp serve` with benchOptions, until SIGTERM.
func serveBench() error {
	cfg, err := config.Load(os.LookupEnv)
	if err != nil {
		return err
	}
	restore, err := logToDevNull()
	if err != nil {
		return err
	}
	defer restore()
	if path := os.Getenv(benchProfileEnv); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	srv, err := New(ctx, cfg, benchOptions())
	if err != nil {
		return err
	}
	defer srv.Close()
	if addr := os.Getenv(benchMemoryEnv); addr != "" {
		mem := &http.Server{Addr: addr, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_ = json.NewEncoder(w).Encode(snapshotMemory())
		})}
		go func() { _ = mem.ListenAndServe() }()
		defer mem.Close()
	}
	return srv.Run(ctx)
}

// benchServer is the running server process.
type benchServer struct {
	pid     int
	memAddr string        // where it answers /memory
	exited  chan struct{} // closed when the process has ended
}

// startBenchServer starts the server process with the environment env; it is stopped
// (SIGTERM) at cleanup.
func startBenchServer(tb testing.TB, env map[string]string) *benchServer {
	tb.Helper()
	memAddr := freeLoopbackAddr(tb)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), benchServeEnv+"=1", benchMemoryEnv+"="+memAddr)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal("start the server process: ", err)
	}
	s := &benchServer{pid: cmd.Process.Pid, memAddr: memAddr, exited: make(chan struct{})}
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(s.exited)
	}()
	tb.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
			if waitErr != nil {
				tb.Error("server process: ", waitErr)
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			tb.Error("server process did not stop within 30 s")
		}
	})
	return s
}

// freeLoopbackAddr is a loopback address with a port free a moment ago; a lost race
// for it fails the start.
func freeLoopbackAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// serverMemory is the server's memSnapshot: this process's, or the server process's.
func (e *benchEnv) serverMemory() (memSnapshot, error) {
	if e.server == nil {
		return snapshotMemory(), nil
	}
	resp, err := e.api.Get("http://" + e.server.memAddr + "/memory")
	if err != nil {
		return memSnapshot{}, err
	}
	defer resp.Body.Close()
	var s memSnapshot
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&s); err != nil {
		return memSnapshot{}, fmt.Errorf("server memory: %w", err)
	}
	return s, nil
}

// logToDevNull makes slog write the server's request log as in production (one JSON
// line a request) to where a write still costs a system call but no terminal slows
// the run; restore puts the previous logger back.
func logToDevNull() (restore func(), err error) {
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	prev := slog.Default()
	slog.SetDefault(NewLogger(devNull, false))
	return func() {
		slog.SetDefault(prev)
		_ = devNull.Close()
	}, nil
}
