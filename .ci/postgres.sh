#!/usr/bin/env bash
# A throwaway PostgreSQL server for the test suites.
#
# Two ways to use it:
#
#   source .ci/postgres.sh        # defines pg_start and pg_stop (used by .ci/run)
#   pg_start                      # exports IDP_TEST_POSTGRES_URL
#   trap pg_stop EXIT
#
#   bash .ci/postgres.sh CMD ARGS...   # start, run CMD with IDP_TEST_POSTGRES_URL
#                                      # set, stop; exits with CMD's status
#   bash .ci/postgres.sh               # start, print the URL, wait for Ctrl-C
#
# The server is a fresh cluster in a temporary folder owned by the postgres
# user (created when missing), listening on 127.0.0.1 only, on the first free
# port from PGTEST_PORT (default 55432), with trust authentication. It is tuned
# for tests (no fsync): never put data you care about in it.
#
# Binaries: PG_BIN if set; else the newest /usr/lib/postgresql/N/bin (Debian's
# package); else the folder of the initdb found on PATH (e.g. /usr/local/bin).
# It does not install PostgreSQL: .ci/run does that (apt-get install postgresql).

pg_find_bin() {
	if [[ -n "${PG_BIN:-}" ]]; then
		[[ -x "$PG_BIN/initdb" ]] || { echo "postgres.sh: PG_BIN=$PG_BIN has no initdb" >&2; return 1; }
		echo "$PG_BIN"
		return 0
	fi
	local d best=""
	for d in /usr/lib/postgresql/*/bin; do
		[[ -x "$d/initdb" && -x "$d/pg_ctl" && -x "$d/postgres" ]] || continue
		# pick the highest major version
		if [[ -z "$best" ]] || (( $(basename "$(dirname "$d")") > $(basename "$(dirname "$best")") )); then
			best="$d"
		fi
	done
	if [[ -z "$best" ]]; then
		local initdb
		initdb="$(command -v initdb 2>/dev/null)" || true
		if [[ -n "$initdb" ]]; then
			# follow a symlink such as /usr/local/bin/initdb -> /usr/lib/postgresql/15/bin/initdb
			best="$(dirname "$(readlink -f "$initdb")")"
			[[ -x "$best/pg_ctl" && -x "$best/postgres" ]] || best="$(dirname "$initdb")"
		fi
	fi
	if [[ -z "$best" || ! -x "$best/initdb" || ! -x "$best/pg_ctl" || ! -x "$best/postgres" ]]; then
		echo "postgres.sh: no PostgreSQL server binaries (initdb, pg_ctl, postgres) found;" \
			"install them with: apt-get install postgresql (or set PG_BIN)" >&2
		return 1
	fi
	echo "$best"
}

# pg_as_owner CMD...: run CMD as the cluster's owner (postgres when we are root).
pg_as_owner() {
	if [[ "$(id -u)" -eq 0 ]]; then
		(cd "$PGTEST_DIR" && runuser -u postgres -- "$@")
	else
		(cd "$PGTEST_DIR" && "$@")
	fi
}

pg_port_free() {
	# A connection that succeeds means that something listens there.
	! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

pg_start() {
	local bin port start end
	bin="$(pg_find_bin)" || return 1
	start=$(date +%s%3N)

	if [[ "$(id -u)" -eq 0 ]] && ! id postgres >/dev/null 2>&1; then
		useradd --system --user-group --no-create-home --home-dir /nonexistent \
			--shell /usr/sbin/nologin postgres || return 1
	fi

	# As root the postgres user must reach the folder, so use /tmp and not
	# a TMPDIR that may sit under /root.
	local tmp="${TMPDIR:-/tmp}"
	if [[ "$(id -u)" -eq 0 ]]; then tmp=/tmp; fi
	PGTEST_DIR="$(mktemp -d "$tmp/idp-pgtest.XXXXXX")" || return 1
	if [[ "$(id -u)" -eq 0 ]]; then
		chown postgres: "$PGTEST_DIR" || return 1
	fi

	port="${PGTEST_PORT:-55432}"
	while ! pg_port_free "$port"; do
		port=$((port + 1))
		if (( port > ${PGTEST_PORT:-55432} + 100 )); then
			echo "postgres.sh: no free port near ${PGTEST_PORT:-55432}" >&2
			return 1
		fi
	done
	PGTEST_PORT_USED="$port"

	if ! pg_as_owner "$bin/initdb" --pgdata="$PGTEST_DIR/data" --username=postgres \
		--auth=trust --encoding=UTF8 --no-locale --no-sync >"$PGTEST_DIR/initdb.log" 2>&1; then
		echo "postgres.sh: initdb failed:" >&2
		cat "$PGTEST_DIR/initdb.log" >&2
		return 1
	fi
	cat >>"$PGTEST_DIR/data/postgresql.conf" <<-EOF
		# idp tests
		listen_addresses = '127.0.0.1'
		port = $port
		unix_socket_directories = '$PGTEST_DIR'
		max_connections = 200
		fsync = off
		synchronous_commit = off
		full_page_writes = off
	EOF

	if ! pg_as_owner "$bin/pg_ctl" --pgdata="$PGTEST_DIR/data" --log="$PGTEST_DIR/server.log" \
		--wait --timeout=60 start >/dev/null; then
		echo "postgres.sh: the server did not start:" >&2
		cat "$PGTEST_DIR/server.log" >&2
		return 1
	fi

	# pg_ctl --wait already waits for the server to accept connections;
	# pg_isready (when present) confirms it over TCP.
	local isready=""
	if [[ -x "$bin/pg_isready" ]]; then isready="$bin/pg_isready"; fi
	if [[ -z "$isready" ]]; then isready="$(command -v pg_isready 2>/dev/null)" || true; fi
	if [[ -n "$isready" ]]; then
		local i
		for i in $(seq 1 60); do
			"$isready" -q -h 127.0.0.1 -p "$port" -U postgres && break
			if (( i == 60 )); then
				echo "postgres.sh: the server does not answer on 127.0.0.1:$port" >&2
				cat "$PGTEST_DIR/server.log" >&2
				return 1
			fi
			sleep 0.5
		done
	fi

	export IDP_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
	end=$(date +%s%3N)
	printf 'postgres.sh: PostgreSQL %s (%s) ready on 127.0.0.1:%s in %d ms\n' \
		"$("$bin/postgres" --version | awk '{print $3}')" "$bin" "$port" \
		"$((end - start))" >&2
}

pg_stop() {
	[[ -n "${PGTEST_DIR:-}" && -d "$PGTEST_DIR" ]] || return 0
	local bin
	bin="$(pg_find_bin)" || return 0
	if [[ -f "$PGTEST_DIR/data/postmaster.pid" ]]; then
		pg_as_owner "$bin/pg_ctl" --pgdata="$PGTEST_DIR/data" --mode=immediate \
			--wait stop >/dev/null 2>&1 || true
	fi
	rm -rf "$PGTEST_DIR"
	PGTEST_DIR=""
	unset IDP_TEST_POSTGRES_URL
}

# Executed rather than sourced: start, run the command (or wait), stop.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
	set -uo pipefail
	pg_start || exit 1
	trap pg_stop EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	if (( $# == 0 )); then
		echo "IDP_TEST_POSTGRES_URL=$IDP_TEST_POSTGRES_URL"
		echo "(Ctrl-C stops the server and removes its data)"
		while true; do
			sleep 3600 &
			wait $!
		done
	fi
	"$@"
	exit $?
fi
