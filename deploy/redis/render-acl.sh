#!/bin/sh
# Render users.acl from users.acl.in and two secret files, then exec the rest of the
# command line (redis-server …). The rendered file holds sha256 hashes, not passwords,
# and is written where redis.conf's aclfile points (a tmpfs in compose and systemd).
#   render-acl.sh TEMPLATE OUT COORDINATOR_SECRET_FILE AGENT_SECRET_FILE [command …]
set -eu
template=$1 out=$2 coordinator_file=$3 agent_file=$4
shift 4
hash() {
    # The file's content without a trailing newline (how secrets are usually written).
    printf '%s' "$(cat "$1")" | sha256sum | cut -d' ' -f1
}
[ -s "$coordinator_file" ] || { echo "render-acl: empty or missing $coordinator_file" >&2; exit 1; }
[ -s "$agent_file" ] || { echo "render-acl: empty or missing $agent_file" >&2; exit 1; }
umask 077
mkdir -p "$(dirname "$out")"
# Redis refuses comments in an ACL file: the template's are dropped here.
sed -e '/^#/d' -e '/^[[:space:]]*$/d' \
    -e "s/@COORDINATOR_PASSWORD_SHA256@/$(hash "$coordinator_file")/" \
    -e "s/@AGENT_PASSWORD_SHA256@/$(hash "$agent_file")/" "$template" > "$out.tmp"
mv "$out.tmp" "$out"
[ $# -eq 0 ] || exec "$@"
