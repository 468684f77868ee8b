#!/usr/bin/env bash
# Deploys a new build of the compose stack without an outage: build the image, run the migrations alone, then replace
# the session nodes one at a time, each only once every node is healthy, and wait after each until nginx sends it
# traffic again. `docker compose up --build -d` would instead recreate all three nodes at once (and nginx with them).
#
#   deploy/rolling-update.sh                    build, migrate, and recreate each node whose image or settings changed
#   deploy/rolling-update.sh --force-recreate   the same, but recreate every node even if nothing changed (a restart)
#
# Settings, from the environment:
#   DOCKER          the docker command (default: docker; e.g. "sudo docker")
#   NODES           the nodes, in order (default: session-1 session-2 session-3)
#   HEALTH_TIMEOUT  seconds a recreated node may take to become healthy (default: 120)
#   SETTLE          seconds to wait after a node is healthy before the next one (default: 5); must exceed nginx's
#                   fail_timeout (3 s, deploy/nginx.conf), after which nginx sends the node traffic again
#   POLL            seconds between health checks (default: 1)
# It stops, exit status 1, without touching the next node, as soon as a node is not healthy: before it starts, before
# each node, or when a recreated node does not become healthy in time. Run it from anywhere; it works in this checkout.
set -euo pipefail

read -r -a docker <<<"${DOCKER:-docker}"
read -r -a nodes <<<"${NODES:-session-1 session-2 session-3}"
health_timeout=${HEALTH_TIMEOUT:-120}
settle=${SETTLE:-5}
poll=${POLL:-1}

recreate=()
case "${1:-}" in
  '') ;;
  --force-recreate) recreate=(--force-recreate) ;;
  *)
    echo "usage: $0 [--force-recreate]" >&2
    exit 2
    ;;
esac

cd "$(dirname "$0")/.."

say() { echo "rolling-update: $*"; }
run() {
  say "\$ ${docker[*]} $*"
  "${docker[@]}" "$@"
}

# The health of a node's running container: healthy, starting, unhealthy, or "not running" when it has none.
health() {
  local id
  id=$("${docker[@]}" compose ps -q "$1")
  if [ -z "$id" ]; then
    echo "not running"
    return
  fi
  "${docker[@]}" inspect --format '{{if .State.Running}}{{if .State.Health}}{{.State.Health.Status}}{{else}}no healthcheck{{end}}{{else}}{{.State.Status}}{{end}}' "$id"
}

# Refuses to go on unless every node is healthy.
all_healthy() {
  local node status sick=0
  for node in "${nodes[@]}"; do
    status=$(health "$node")
    if [ "$status" != healthy ]; then
      say "$node is $status"
      sick=1
    fi
  done
  if [ "$sick" -ne 0 ]; then
    say "refusing to go on while a node is not healthy: nothing more was changed; fix it (docker compose ps -a, docker compose logs <node>) and run this again"
    exit 1
  fi
}

wait_healthy() {
  local node=$1 status start=$SECONDS
  while :; do
    status=$(health "$node")
    case "$status" in
      healthy)
        say "$node is healthy after $((SECONDS - start)) s"
        return
        ;;
      starting) ;;
      *)
        say "$node is $status after $((SECONDS - start)) s: stopping here; the nodes after it were not touched"
        exit 1
        ;;
    esac
    if [ $((SECONDS - start)) -ge "$health_timeout" ]; then
      say "$node is still $status after ${health_timeout} s: stopping here; the nodes after it were not touched"
      exit 1
    fi
    sleep "$poll"
  done
}

say "checking that ${nodes[*]} are healthy"
all_healthy

say "building the image"
run compose build

all_healthy
say "applying migrations, alone, before any node runs the new code"
run compose run --rm --no-deps -T migrate

for node in "${nodes[@]}"; do
  all_healthy
  say "replacing $node"
  run compose up -d --no-deps ${recreate[@]+"${recreate[@]}"} "$node"
  wait_healthy "$node"
  say "waiting ${settle} s for nginx to send $node traffic again"
  sleep "$settle"
done

all_healthy
say "done: ${nodes[*]} replaced one at a time, all healthy"
