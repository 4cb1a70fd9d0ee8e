#!/usr/bin/env bash
# Container smoke test (`npm run test:docker`): builds the image, runs it on the host network in
# sandbox mode, submits a job of real images from a local fake origin, waits for `complete`, checks
# the links, /health, the image's own HEALTHCHECK and a clean stop on SIGTERM. Then brings up
# compose.yaml's `fleet` profile (Redis, a shared sandbox, three replicas, nginx) and checks it
# through the load balancer (scripts/smoke-fleet.ts). Finally removes every container, network and
# image it created. Talks to the containers through 127.0.0.1 only.
set -euo pipefail
root="$(git rev-parse --show-toplevel)"
cd "$root"
# Node 24 runs the TypeScript client; `npm run` puts it first on the PATH, the repo has it too.
node="$root/node_modules/.bin/node"
[ -x "$node" ] || node=node

# No registry is reachable on these machines: the engine and base images are built locally (as root).
sudo=$([ "$(id -u)" = 0 ] || echo sudo)
$sudo bash "$root/../shared/docker/base-image.sh" >/dev/null
# The engine's socket belongs to root unless this user is in the docker group.
docker_sudo=$(docker info >/dev/null 2>&1 || echo sudo)
[ -z "$docker_sudo" ] || docker() { sudo docker "$@"; }

id="smoke-$$"
tag="imgur-upload-service:$id"
deps="imgur-upload-service:$id-deps"
build="imgur-upload-service:$id-build"
name="imgur-upload-$id"
# The fleet's Compose project: its containers, network and images are named after it.
project="imgur-fleet-$id"
work=$(mktemp -d)
# An empty env file: a developer's .env (live Imgur credentials) never reaches the fleet under test.
: >"$work/empty.env"
fleet_env=()
fleet_started=
compose() {
  $docker_sudo env "${fleet_env[@]}" docker-compose -p "$project" --env-file "$work/empty.env" --profile fleet "$@"
}
cleanup() {
  local status=$?
  if [ "$status" -ne 0 ] && docker container inspect "$name" >/dev/null 2>&1; then
    echo "--- last container logs ---" >&2
    docker logs --tail 40 "$name" >&2 2>&1 || true
  fi
  if [ -n "$fleet_started" ]; then
    if [ "$status" -ne 0 ]; then
      echo "--- last fleet logs ---" >&2
      compose logs --no-color --tail 20 >&2 2>&1 || true
    fi
    compose down --volumes --rmi local --remove-orphans >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
  docker rm -f "$name" >/dev/null 2>&1 || true
  docker image rm -f "$tag" >/dev/null 2>&1 || true
  docker image rm -f "$deps" >/dev/null 2>&1 || true
  docker image rm -f "$build" >/dev/null 2>&1 || true
  exit "$status"
}
trap cleanup EXIT
fail() {
  echo "docker smoke test FAILED: $*" >&2
  exit 1
}

# The dependency and type-stripping stages get tags of their own so that cleanup removes them too.
docker build --network host --target deps -t "$deps" . >/dev/null
docker build --network host --target build -t "$build" . >/dev/null
docker build --network host -t "$tag" . >/dev/null
echo "image size: $(docker image inspect -f '{{.Size}}' "$tag") bytes"
[ "$(docker image inspect -f '{{.Config.User}}' "$tag")" = node ] || fail 'the image does not run as user node'
# The image runs plain JavaScript: a .ts file in it would load Node's type stripper (26 MB resident).
stray=$(docker run --rm --entrypoint find "$tag" /app/src -type f ! -name '*.js')
[ -z "$stray" ] || fail "the image holds files other than .js in src/: $stray"

free_port() {
  "$node" -e "const s = require('node:net').createServer().listen(0, '127.0.0.1', () => { console.log(s.address().port); s.close() })"
}
port=$(free_port)
sandbox_port=$(free_port)
docker run -d --name "$name" --network host --health-interval 2s \
  -e HOST=127.0.0.1 -e PORT="$port" -e SANDBOX_PORT="$sandbox_port" \
  -e SANDBOX_PUBLIC_URL="http://127.0.0.1:$sandbox_port" -e FETCH_ALLOW_PRIVATE_NETWORKS=true \
  "$tag" >/dev/null

"$node" scripts/smoke-job.ts "http://127.0.0.1:$port"

health=starting
for _ in $(seq 1 30); do
  health=$(docker inspect -f '{{.State.Health.Status}}' "$name")
  [ "$health" = healthy ] && break
  sleep 1
done
[ "$health" = healthy ] || fail "the image's HEALTHCHECK says $health"
echo "HEALTHCHECK: $health"

# Node is PID 1: SIGTERM must reach server.ts, which drains and exits 0.
docker stop -t 20 "$name" >/dev/null
code=$(docker inspect -f '{{.State.ExitCode}}' "$name")
[ "$code" = 0 ] || fail "exit code $code after SIGTERM"
docker logs "$name" 2>&1 | grep -q '"msg":"stopped"' || fail 'no "stopped" log line after SIGTERM'
echo "SIGTERM: drained and exited 0"

# The fleet on its own network: the LB and the sandbox (whose links the client opens) are
# published on free ports. Each upload takes 2 s and a stopping replica hands its items back at
# once, so that a job lasts long enough to stop a replica in the middle of it. Empty Imgur
# variables: credentials in this shell's environment never reach the fleet (it uses the sandbox).
lb_port=$(free_port)
links_port=$(free_port)
fleet_env=(
  FLEET_PORT="$lb_port" FLEET_SANDBOX_PORT="$links_port" FLEET_SANDBOX_PUBLIC_URL="http://127.0.0.1:$links_port"
  FLEET_SANDBOX_LATENCY_MS=2000 SHUTDOWN_TIMEOUT_MS=1000 UPLOAD_CONCURRENCY=2 LOG_LEVEL=info
  FLEET_IMGUR_API_URL= IMGUR_CLIENT_ID= IMGUR_CLIENT_SECRET= IMGUR_REFRESH_TOKEN=
  FETCH_ALLOW_PRIVATE_NETWORKS=true
)
fleet_started=1
# Naming `lb` starts it and what it depends on, not the profile-less single service.
compose up -d --build lb >"$work/up.log" 2>&1 || { tail -40 "$work/up.log" >&2; fail 'the fleet did not come up'; }
echo "fleet images: redis $(docker image inspect -f '{{.Size}}' "${project}_redis") bytes, lb $(docker image inspect -f '{{.Size}}' "${project}_lb") bytes"
# The replicas download from the fake origin on this machine, at their network's gateway.
gateway=$(docker network inspect -f '{{range .IPAM.Config}}{{.Gateway}}{{end}}' "${project}_default")
# It runs docker and docker-compose itself (to read logs and stop a replica), through sudo if need be.
SMOKE_SUDO=${docker_sudo:+1} "$node" scripts/smoke-fleet.ts "http://127.0.0.1:$lb_port" "$gateway" "$project"
for service in redis sandbox lb; do
  container=$(docker ps -q --filter "label=com.docker.compose.project=$project" --filter "label=com.docker.compose.service=$service")
  health=$(docker inspect -f '{{.State.Health.Status}}' "$container")
  [ "$health" = healthy ] || fail "the fleet's $service is $health"
done
echo "fleet HEALTHCHECKs: redis, sandbox, lb healthy"
echo "docker smoke test passed"
