#!/bin/sh
# Build anefarm's URLs from secret files, then exec the command (anefarm …).
#
# Passwords are never written in compose.yaml, a unit file, the image or a command line
# (where `ps` shows them to every user): the container runtime (/run/secrets/…) or
# systemd (LoadCredential=, $CREDENTIALS_DIRECTORY) hands them over as files, and this
# puts them into the process environment, which only the process's own user can read.
#
#   ANEFARM_BROKER_PASSWORD_FILE    → ANEFARM_BROKER_URL
#       ${ANEFARM_BROKER_SCHEME:-redis}://${ANEFARM_BROKER_USER:-coordinator}:PW@
#       ${ANEFARM_BROKER_HOST:-redis}:${ANEFARM_BROKER_PORT:-6379}/0${ANEFARM_BROKER_QUERY}
#   ANEFARM_DATABASE_PASSWORD_FILE  → ANEFARM_DATABASE_URL
#       postgresql+psycopg://${ANEFARM_DATABASE_USER:-anefarm}:PW@
#       ${ANEFARM_DATABASE_HOST:-postgres}:${ANEFARM_DATABASE_PORT:-5432}/
#       ${ANEFARM_DATABASE_NAME:-anefarm}?sslmode=${ANEFARM_DATABASE_SSLMODE:-prefer}
#   ANEFARM_ARTIFACT_TOKEN_FILE     → ANEFARM_ARTIFACT_TOKEN
# A URL already set in the environment wins.
set -eu

# The file's content, percent-encoded for a URL's password (no trailing newline).
secret_for_url() {
    python3 -c 'import sys, urllib.parse
print(urllib.parse.quote(open(sys.argv[1]).read().strip(), safe=""))' "$1"
}

if [ -z "${ANEFARM_BROKER_URL:-}" ] && [ -n "${ANEFARM_BROKER_PASSWORD_FILE:-}" ]; then
    ANEFARM_BROKER_URL="${ANEFARM_BROKER_SCHEME:-redis}://${ANEFARM_BROKER_USER:-coordinator}:$(secret_for_url "$ANEFARM_BROKER_PASSWORD_FILE")@${ANEFARM_BROKER_HOST:-redis}:${ANEFARM_BROKER_PORT:-6379}/0${ANEFARM_BROKER_QUERY:-}"
    export ANEFARM_BROKER_URL
fi
if [ -z "${ANEFARM_DATABASE_URL:-}" ] && [ -n "${ANEFARM_DATABASE_PASSWORD_FILE:-}" ]; then
    ANEFARM_DATABASE_URL="postgresql+psycopg://${ANEFARM_DATABASE_USER:-anefarm}:$(secret_for_url "$ANEFARM_DATABASE_PASSWORD_FILE")@${ANEFARM_DATABASE_HOST:-postgres}:${ANEFARM_DATABASE_PORT:-5432}/${ANEFARM_DATABASE_NAME:-anefarm}?sslmode=${ANEFARM_DATABASE_SSLMODE:-prefer}"
    export ANEFARM_DATABASE_URL
fi
if [ -z "${ANEFARM_ARTIFACT_TOKEN:-}" ] && [ -n "${ANEFARM_ARTIFACT_TOKEN_FILE:-}" ]; then
    ANEFARM_ARTIFACT_TOKEN="$(tr -d '\n' < "$ANEFARM_ARTIFACT_TOKEN_FILE")"
    export ANEFARM_ARTIFACT_TOKEN
fi
exec "$@"
