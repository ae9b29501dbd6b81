package server

import (
	"errors"
	"testing"

	"github.com/astral/idp/login/password"
)

func TestGCSettings(t *testing.T) {
	const mib = 1 << 20
	hashes := int64(password.MaxConcurrent()) * int64(password.DefaultParams.Memory) << 10
	noEnv := func(string) (string, bool) { return "", false }
	env := func(name string) func(string) (string, bool) {
		return func(k string) (string, bool) { return "50", k == name }
	}
	noContainer := func() (uint64, error) { return 0, errors.New("no cgroup") }
	container := func(n uint64) func() (uint64, error) { return func() (uint64, error) { return n, nil } }
	for _, c := range []struct {
		name        string
		env         func(string) (string, bool)
		container   func() (uint64, error)
		wantOK      bool
		wantPercent int
		wantLimit   int64
	}{
		{"GOGC set: the environment chose", env("GOGC"), noContainer, false, 0, 0},
		{"GOMEMLIMIT set: the environment chose", env("GOMEMLIMIT"), container(1 << 30), false, 0, 0},
		{"no container: room for four rounds of hashes", noEnv, noContainer, true, gcPercent, gcBaseLimit + 4*hashes},
		{"a large container changes nothing", noEnv, container(64 << 30), true, gcPercent, gcBaseLimit + 4*hashes},
		{"a container smaller than that: nine tenths of it", noEnv, container(300 * mib), true, gcPercent, 300 * mib / 10 * 9},
		{"a small container: Go's default percent", noEnv, container(200 * mib), true, 100, 200 * mib / 10 * 9},
		{"an unlimited cgroup reads as a huge number", noEnv, container(1 << 63), true, gcPercent, gcBaseLimit + 4*hashes},
	} {
		t.Run(c.name, func(t *testing.T) {
			percent, limit, ok := gcSettings(c.env, password.DefaultParams, c.container)
			if ok != c.wantOK || percent != c.wantPercent || limit != c.wantLimit {
				t.Errorf("gcSettings = %d, %d MiB, %v; want %d, %d MiB, %v",
					percent, limit/mib, ok, c.wantPercent, c.wantLimit/mib, c.wantOK)
			}
		})
	}
}
