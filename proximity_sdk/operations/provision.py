"""Inside the container, through the node shell: the container runtime, the compose project, health.

Each script runs as one quoted argument of ``pct exec <vmid> -- sh -c``; values reach it as
positional arguments (``$1``...), never pasted into the script text.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable

from proximity_sdk.models.app import App
from proximity_sdk.models.registries import RegistrySettings
from proximity_sdk.proxmox.shell import CommandResult, NodeShell

__all__ = [
    "PROJECT_ROOT",
    "SETTLE_SECONDS",
    "Provisioner",
    "app_project",
    "compose_project_name",
]

PROJECT_ROOT = "/opt/proximity"

# how long every container must keep running, without a restart, before the app counts as healthy:
# long enough to see a crash loop (Docker restarts at once, then backs off in "restarting").
# PROXIMITY_HEALTH_SETTLE_SECONDS changes it (the stand-in test suite sets 0: nothing restarts there).
SETTLE_SECONDS = 5

# Which compose to use: the v2 plugin when present, else the v1 binary (Debian's docker-compose).
_COMPOSE = (
    "if docker compose version >/dev/null 2>&1; then set -- docker compose; else set -- docker-compose; fi\n"
    'set -- "$@" --file compose.yaml --project-name "$project"'
)

# $1: "1" when registry settings were just written under /etc/docker (dockerd must (re)read them).
# Compose is the v2 plugin or Debian 12's docker-compose v1; dockerd is started by whatever init
# the template has (systemd, OpenRC, sysvinit), or directly when it has none.
_INSTALL_DOCKER = r"""set -eu
configured="${1:-0}"
has_compose() {
    docker compose version >/dev/null 2>&1 || docker-compose version >/dev/null 2>&1
}
start_docker() {
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        systemctl enable docker >/dev/null 2>&1 || true
        systemctl "$1" docker
    elif command -v rc-service >/dev/null 2>&1; then
        rc-update add docker default >/dev/null 2>&1 || true
        rc-service docker "$1"
    elif [ -x /etc/init.d/docker ]; then
        /etc/init.d/docker "$1"
    else
        if [ "$1" = restart ] && [ -r /run/docker.pid ]; then
            kill "$(cat /run/docker.pid)" 2>/dev/null || true
            sleep 2
        fi
        nohup dockerd >/var/log/dockerd.log 2>&1 </dev/null &
    fi
}
if command -v docker >/dev/null 2>&1 && has_compose; then
    echo "container runtime present: $(docker --version)"
    if [ "$configured" = 1 ] && docker info >/dev/null 2>&1; then
        echo "registry settings changed: restarting the docker daemon"
        start_docker restart
    elif ! docker info >/dev/null 2>&1; then
        start_docker start
    fi
elif command -v apk >/dev/null 2>&1; then
    apk add --no-cache docker docker-cli-compose
    start_docker start
elif command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    # Debian 12 has no compose v2 package: docker-compose (v1) reads the same compose file
    apt-get install -y -q docker.io docker-compose
    docker info >/dev/null 2>&1 || start_docker start
else
    echo "the container has neither apk nor apt-get: use an Alpine or Debian template" >&2
    exit 3
fi
i=0
until docker info >/dev/null 2>&1; do
    i=$((i + 1))
    if [ "$i" -ge 60 ]; then echo "the docker daemon did not start within 60 s" >&2; exit 4; fi
    sleep 1
done
echo "container runtime ready: $(docker --version)"
"""

_MAKE_DIR = 'set -eu\nmkdir -p "$1"\nchmod 0750 "$1"\n'

# every argument a directory to make (mode 0755) before the registry files are pushed into them
_MAKE_DIRS = 'set -eu\nfor d in "$@"; do mkdir -p "$d"; done\nchmod 0700 /root/.docker 2>/dev/null || true\n'

# $1 project directory, $2 project name; what follows picks the compose command into "$@"
_PROJECT_HEADER = 'set -eu\ncd "$1"\nproject="$2"\n' + _COMPOSE + "\n"

_UP = (
    _PROJECT_HEADER
    + """\
if "$@" pull --quiet 2>&1; then echo "images pulled"; else echo "pull failed; trying with local images"; fi
exec "$@" up -d --remove-orphans
"""
)

_DOWN = _PROJECT_HEADER + 'exec "$@" down --remove-orphans\n'

_PULL = _PROJECT_HEADER + 'exec "$@" pull --quiet\n'

_RECREATE = _PROJECT_HEADER + 'exec "$@" up -d --remove-orphans\n'

# one "<image>\t<repo>@<digest>" line per image of the project (the digest empty when unknown)
# compose v1 (Debian 12) has no `config --images`: the images of the project's containers instead
_DIGESTS = (
    _PROJECT_HEADER
    + """\
# (it prints its usage to stderr and exits 0)
images=$("$@" config --images 2>/dev/null) || images=""
[ -n "$images" ] || images=$(docker ps -a --filter "label=com.docker.compose.project=$project" \\
    --format '{{.Image}}' | sort -u)
printf '%s\\n' "$images" | while IFS= read -r image; do
    [ -n "$image" ] || continue
    digest=$(docker image inspect --format '{{index .RepoDigests 0}}' "$image" 2>/dev/null) || digest=""
    printf '%s\\t%s\\n' "$image" "$digest"
done
"""
)

# $1 directory, $2 project, $3 lines, $4 service ('' for all)
_LOGS = (
    'set -eu\ncd "$1"\nproject="$2"\ntail="$3"\nservice="$4"\n'
    + _COMPOSE
    + """
if [ -n "$service" ]; then
    exec "$@" logs --no-color --tail "$tail" "$service"
fi
exec "$@" logs --no-color --tail "$tail"
"""
)

# $1 project directory, $2 project, $3 port, $4 HTTP path ('' when the app names none), $5 seconds
# to wait in all, $6 settling seconds. Healthy: every container of the project runs, Docker's own
# healthcheck (where the image has one) says healthy, none restarts during the settling period, and
# the port answers a real request at both ends of it. A listening socket proves nothing: Docker's
# port proxy listens while the service behind it crash-loops. No ss/netstat (busybox has neither):
# /proc/net/tcp{,6} for a cheap pre-check, then a request through nc, bash's /dev/tcp or wget.
_HEALTH = r"""set -u
cd "$1" || exit 2
project="$2"
port="$3"
path="$4"
seconds="$5"
settle="$6"
hexport=$(printf '%04X' "$port")
reason="nothing checked yet"

states() {
    ids=$(docker ps -a -q --no-trunc --filter "label=com.docker.compose.project=$project") || return 1
    [ -n "$ids" ] || { reason="no container of project $project exists"; return 1; }
    # shellcheck disable=SC2086  # one argument per container id
    format='{{.Name}} {{.State.Status}} {{.RestartCount}} '
    format="$format{{if .State.Health}}{{.State.Health.Status}}{{else}}-{{end}}"
    docker inspect --format "$format" $ids
}

running() {
    table=$(states) || return 1
    bad=$(printf '%s\n' "$table" | while read -r name status restarts health; do
        [ -n "$name" ] || continue
        if [ "$status" != running ]; then
            echo "container ${name#/} is $status (restarted $restarts times)"
        elif [ "$health" != - ] && [ "$health" != healthy ]; then
            echo "container ${name#/} is $health by its own healthcheck"
        fi
    done)
    if [ -n "$bad" ]; then reason=$(printf '%s' "$bad" | tr '\n' ';'); return 1; fi
    return 0
}

listening() {
    [ -r /proc/net/tcp ] || return 0  # no /proc here: the request below decides alone
    # "sl local_address rem_address st ...": a socket on the port in state 0A (LISTEN)
    if cat /proc/net/tcp /proc/net/tcp6 2>/dev/null \
            | grep -Eq "^ *[0-9]+: [0-9A-F]+:$hexport [0-9A-F]+:[0-9A-F]+ 0A "; then
        return 0
    fi
    reason="nothing listens on port $port"
    return 1
}

request() {
    printf 'GET %s HTTP/1.0\r\nHost: localhost:%s\r\n' "${path:-/}" "$port"
    printf 'User-Agent: proximity-health\r\nConnection: close\r\n\r\n'
}

fetch() {
    if command -v nc >/dev/null 2>&1; then
        request | timeout 10 nc -w 5 127.0.0.1 "$port" 2>/dev/null
    elif command -v bash >/dev/null 2>&1; then
        request | timeout 10 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1; cat >&3; cat <&3' \
            sh "$port" 2>/dev/null
    elif command -v busybox >/dev/null 2>&1 && busybox nc --help >/dev/null 2>&1; then
        request | timeout 10 busybox nc -w 5 127.0.0.1 "$port" 2>/dev/null
    else
        headers=$(wget -q -S -O /dev/null -T 5 "http://127.0.0.1:$port${path:-/}" 2>&1)
        status=$?
        printf '%s\n' "$headers" | sed -n 's/^ *\(HTTP\/\)/\1/p'
        return "$status"
    fi
}

answers() {
    out=$(fetch)
    connected=$?
    first=$(printf '%s\n' "$out" | head -n 1 | tr -d '\r')
    if [ -z "$path" ]; then
        # no HTTP path: the app may speak another protocol (a database, MQTT) and say nothing to
        # a request it does not understand; an accepted connection is the answer
        if [ -n "$first" ] || [ "$connected" = 0 ] || [ "$connected" = 124 ]; then
            answer="${first:-connection accepted}"
            return 0
        fi
        reason="port $port refuses connections"
        return 1
    fi
    code=$(printf '%s' "$first" | sed -n 's/^HTTP\/[0-9.]* \([0-9][0-9][0-9]\).*/\1/p')
    if [ -z "$first" ]; then reason="port $port accepts no request (no answer)"; return 1; fi
    if [ -z "$code" ]; then reason="port $port answered, but not HTTP: $first"; return 1; fi
    if [ "$code" -ge 500 ]; then reason="GET $path on port $port answered $first"; return 1; fi
    answer="$first"
    return 0
}

# one check a second, at most $seconds of them (a settling period comes on top of its check)
tries=0
while :; do
    tries=$((tries + 1))
    if running && listening && answers; then
        before=$(states)
        stable=1
        i=0
        while [ "$i" -lt "$settle" ]; do
            sleep 1
            i=$((i + 1))
            if ! running; then stable=0; break; fi
            now=$(states) || { stable=0; break; }
            if [ "$now" != "$before" ]; then
                reason="a container restarted while settling: $(printf '%s' "$now" | tr '\n' ';')"
                stable=0
                break
            fi
        done
        if [ "$stable" = 1 ] && answers; then
            echo "healthy: every container of $project runs, port $port answers: $answer"
            exit 0
        fi
    fi
    if [ "$tries" -ge "$seconds" ]; then break; fi
    sleep 1
done
echo "unhealthy after $tries checks: $reason" >&2
exit 1
"""

_PROJECT_NAME = re.compile(r"[^a-z0-9_-]")

Emit = Callable[[str], None]


def compose_project_name(hostname: str) -> str:
    """A compose project name (lowercase letters, digits, ``-`` and ``_``) from the app hostname."""
    name = _PROJECT_NAME.sub("-", hostname.lower()).strip("-_") or "app"
    return name[:63]


def app_project(app: App) -> str:
    """The app's compose project: a clone keeps its source's (``config["compose_project"]``: docker
    prefixes the named volumes holding the copied data with it), every other app its hostname."""
    return compose_project_name(str(app.config.get("compose_project") or app.hostname))


class Provisioner:
    """The compose project of one app in its container, reached through the node shell."""

    def __init__(self, shell: NodeShell, node: str, vmid: int, *, project: str, emit: Emit | None = None) -> None:
        self._shell = shell
        self._node = node
        self._vmid = vmid
        self.project = compose_project_name(project)
        self.directory = f"{PROJECT_ROOT}/{self.project}"
        self._emit = emit

    def _output(self, stream: str, line: str) -> None:
        if self._emit is not None and line.strip():
            self._emit(line.rstrip())

    def _exec(self, script: str, *args: str, timeout: float) -> CommandResult:
        return self._shell.pct_exec(self._node, self._vmid, script, args=args, timeout=timeout, on_output=self._output)

    def install_docker(self, *, registries: RegistrySettings | None = None, timeout: float = 900.0) -> CommandResult:
        """Docker and compose, unless present (apk on Alpine, apt-get on Debian), dockerd running
        with the host's ``registries`` settings (written before dockerd starts, or dockerd restarted)."""
        configured = registries is not None and not registries.empty
        if registries is not None and configured:
            self.write_registries(registries, timeout=min(timeout, 120.0))
        return self._exec(_INSTALL_DOCKER, "1" if configured else "0", timeout=timeout)

    def write_registries(self, registries: RegistrySettings, *, timeout: float = 120.0) -> None:
        """daemon.json, a ``certs.d/<registry>/ca.crt`` per CA, and the logins in
        ``/root/.docker/config.json`` (mode 0600), each through ``pct push``: no secret in any argv."""
        dirs = ["/etc/docker", *(f"/etc/docker/certs.d/{r}" for r in registries.cas)]
        if registries.credentials:
            dirs.append("/root/.docker")
        self._exec(_MAKE_DIRS, *dirs, timeout=timeout)
        push = self._shell.pct_push
        push(
            self._node,
            self._vmid,
            registries.daemon_json().encode(),
            "/etc/docker/daemon.json",
            mode=0o644,
            timeout=timeout,
        )
        for registry, pem in registries.cas.items():
            push(
                self._node,
                self._vmid,
                pem.encode(),
                f"/etc/docker/certs.d/{registry}/ca.crt",
                mode=0o644,
                timeout=timeout,
            )
        if registries.credentials:
            push(
                self._node,
                self._vmid,
                registries.docker_config_json().encode(),
                "/root/.docker/config.json",
                mode=0o600,
                timeout=timeout,
            )

    def write_project(self, compose_text: str, env_text: str, *, timeout: float = 60.0) -> None:
        """``compose.yaml`` and ``.env`` (mode 0600: it holds the generated secrets)."""
        self._exec(_MAKE_DIR, self.directory, timeout=timeout)
        self._shell.pct_push(
            self._node, self._vmid, compose_text.encode(), f"{self.directory}/compose.yaml", mode=0o640, timeout=timeout
        )
        self._shell.pct_push(
            self._node, self._vmid, env_text.encode(), f"{self.directory}/.env", mode=0o600, timeout=timeout
        )

    def up(self, *, timeout: float = 1800.0) -> CommandResult:
        """Pull the images and start the project (``up -d``)."""
        return self._exec(_UP, self.directory, self.project, timeout=timeout)

    def pull(self, *, timeout: float = 1800.0) -> CommandResult:
        """Pull every image of the project (a failed pull fails: nothing is recreated on stale images)."""
        return self._exec(_PULL, self.directory, self.project, timeout=timeout)

    def recreate(self, *, timeout: float = 900.0) -> CommandResult:
        """``up -d``: compose recreates the services whose image or configuration changed."""
        return self._exec(_RECREATE, self.directory, self.project, timeout=timeout)

    def image_digests(self, *, timeout: float = 120.0) -> dict[str, str]:
        """Each image of the project -> the digest of the image pulled (``sha256:...``, "" when unknown)."""
        result = self._shell.pct_exec(
            self._node, self._vmid, _DIGESTS, args=(self.directory, self.project), timeout=timeout
        )
        digests: dict[str, str] = {}
        for line in result.stdout.splitlines():
            image, _, repo_digest = line.partition("\t")
            if image.strip():
                digests[image.strip()] = repo_digest.strip().rpartition("@")[2] if "@" in repo_digest else ""
        return digests

    def down(self, *, timeout: float = 300.0) -> CommandResult:
        return self._exec(_DOWN, self.directory, self.project, timeout=timeout)

    def wait_healthy(
        self, port: int, *, attempts: int = 60, path: str | None = None, settle: int | None = None
    ) -> CommandResult:
        """Until the app serves: every container of the project running and not restarting for
        ``settle`` seconds, healthy by its image's own healthcheck, and ``port`` answering a request
        (an HTTP status below 500 at ``path`` when given); at most ``attempts`` seconds."""
        if settle is None:
            settle = int(os.environ.get("PROXIMITY_HEALTH_SETTLE_SECONDS") or SETTLE_SECONDS)
        return self._exec(
            _HEALTH,
            self.directory,
            self.project,
            str(port),
            path or "",
            str(attempts),
            str(settle),
            timeout=attempts * 2 + settle + 60,
        )

    def logs(self, *, tail: int = 200, service: str | None = None, timeout: float = 60.0) -> str:
        result = self._shell.pct_exec(
            self._node,
            self._vmid,
            _LOGS,
            args=(self.directory, self.project, str(tail), service or ""),
            timeout=timeout,
        )
        return result.stdout
