#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the test suite.
#
#   .ci/postgres.sh COMMAND...   start a cluster, run COMMAND with PORTAL_DATABASE_URL pointing at
#                                it, then stop and delete the cluster; exits with COMMAND's status
#   .ci/postgres.sh              start a cluster, print the URL to export, keep it until Ctrl-C
#
# The cluster lives in a temporary folder and listens only on a unix socket in that folder (no TCP
# port to collide with); it trusts local connections, so nothing secret is involved. initdb and
# pg_ctl refuse to run as root: as root the cluster runs as the unprivileged user `postgres` (made
# by Debian's package), or `nobody` if there is none.
set -euo pipefail

pg_bin() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/initdb" ] && { echo "$dir"; return 0; }
  done
  command -v initdb >/dev/null 2>&1 && dirname "$(command -v initdb)"
}

BIN="$(pg_bin || true)"
if [ -z "$BIN" ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    BIN="$(pg_bin)"
  else
    echo "PostgreSQL is missing and this is not root: run 'sudo apt-get install -y postgresql'." >&2
    exit 1
  fi
fi

as_owner=()
if [ "$(id -u)" = 0 ]; then
  owner=postgres
  id -u "$owner" >/dev/null 2>&1 || owner=nobody
  as_owner=(runuser -u "$owner" --)
fi

# The folder's name goes into the URL's host part, which URL parsers lower-case: hex digits only.
DIR="/tmp/portal-pg-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
mkdir -m 700 "$DIR"
[ ${#as_owner[@]} -eq 0 ] || chown "$owner" "$DIR"

stop() {
  [ -z "${sleeper:-}" ] || kill "$sleeper" 2>/dev/null || true
  "${as_owner[@]}" "$BIN/pg_ctl" stop -D "$DIR/data" -m immediate -s >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# C.UTF-8: the same collation and encoding on every machine, whatever the caller's locale.
"${as_owner[@]}" "$BIN/initdb" -D "$DIR/data" -U portal --auth=trust --encoding=UTF8 --locale=C.UTF-8 \
  >"$DIR/initdb.log" 2>&1 || { cat "$DIR/initdb.log" >&2; exit 1; }
# No TCP. Durability off: the cluster is thrown away, so waiting for the disk would buy nothing.
"${as_owner[@]}" "$BIN/pg_ctl" start -D "$DIR/data" -l "$DIR/postgres.log" -w -t 60 -s \
  -o "-c listen_addresses='' -c unix_socket_directories='$DIR' -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
  || { cat "$DIR/postgres.log" >&2; exit 1; }
"${as_owner[@]}" "$BIN/createdb" -h "$DIR" -U portal portal

# A socket folder goes in the URL's host, percent-encoded.
PORTAL_DATABASE_URL="postgres://portal@${DIR//\//%2F}/portal"
export PORTAL_DATABASE_URL

if [ $# -gt 0 ]; then
  echo "PostgreSQL $("$BIN/postgres" --version | awk '{print $3}') at $PORTAL_DATABASE_URL"
  status=0
  "$@" || status=$?
  exit "$status"
fi

echo "export PORTAL_DATABASE_URL='$PORTAL_DATABASE_URL'"
echo "(PostgreSQL runs until Ctrl-C; its folder $DIR is deleted then.)"
while :; do sleep 3600 & sleeper=$!; wait "$sleeper"; done
