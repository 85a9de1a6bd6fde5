"""Inside the container, through the node shell: the container runtime, the compose project, health.

Each script runs as one quoted argument of ``pct exec <vmid> -- sh -c``; values reach it as
positional arguments (``$1``...), never pasted into the script text.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from proximity_sdk.models.app import App
from proximity_sdk.proxmox.shell import CommandResult, NodeShell

__all__ = [
    "PROJECT_ROOT",
    "Provisioner",
    "app_project",
    "compose_project_name",
]

PROJECT_ROOT = "/opt/proximity"

# Which compose to use: the v2 plugin when present, else the v1 binary (Debian's docker-compose).
_COMPOSE = 'if docker compose version >/dev/null 2>&1; then set -- docker compose; else set -- docker-compose; fi\n' \
           'set -- "$@" --file compose.yaml --project-name "$project"'

_INSTALL_RUNTIME = r"""set -eu
if command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
    echo "container runtime present: $(docker --version)"
    exit 0
fi
if command -v apk >/dev/null 2>&1; then
    apk add --no-cache docker docker-cli-compose
    rc-update add docker default >/dev/null 2>&1 || true
    rc-service docker start
elif command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q docker.io docker-compose
    systemctl enable --now docker
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
echo "container runtime installed: $(docker --version)"
"""

_MAKE_DIR = 'set -eu\nmkdir -p "$1"\nchmod 0750 "$1"\n'

# $1 project directory, $2 project name; what follows picks the compose command into "$@"
_PROJECT_HEADER = 'set -eu\ncd "$1"\nproject="$2"\n' + _COMPOSE + "\n"

_UP = _PROJECT_HEADER + """\
"$@" pull --quiet 2>&1 || echo "pull failed; trying with local images"
exec "$@" up -d --remove-orphans
"""

_DOWN = _PROJECT_HEADER + 'exec "$@" down --remove-orphans\n'

_PULL = _PROJECT_HEADER + 'exec "$@" pull --quiet\n'

_RECREATE = _PROJECT_HEADER + 'exec "$@" up -d --remove-orphans\n'

# one "<image>\t<repo>@<digest>" line per image of the project (the digest empty when unknown)
_DIGESTS = _PROJECT_HEADER + """\
"$@" config --images | while IFS= read -r image; do
    [ -n "$image" ] || continue
    digest=$(docker image inspect --format '{{index .RepoDigests 0}}' "$image" 2>/dev/null) || digest=""
    printf '%s\\t%s\\n' "$image" "$digest"
done
"""

# $1 directory, $2 project, $3 lines, $4 service ('' for all)
_LOGS = 'set -eu\ncd "$1"\nproject="$2"\ntail="$3"\nservice="$4"\n' + _COMPOSE + """
if [ -n "$service" ]; then
    exec "$@" logs --no-color --tail "$tail" "$service"
fi
exec "$@" logs --no-color --tail "$tail"
"""

_LISTENING = r"""port="$1"
tries="$2"
i=0
while :; do
    if ss -Htln 2>/dev/null | grep -Eq "[:.]${port}[[:space:]]"; then
        echo "port ${port} is listening"
        exit 0
    fi
    i=$((i + 1))
    if [ "$i" -ge "$tries" ]; then break; fi
    sleep 1
done
echo "nothing listens on port ${port} after ${tries} attempts" >&2
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
        return self._shell.pct_exec(self._node, self._vmid, script, args=args, timeout=timeout,
                                    on_output=self._output)

    def install_runtime(self, *, timeout: float = 900.0) -> CommandResult:
        """Docker and compose, unless present (apk on Alpine, apt-get on Debian)."""
        return self._exec(_INSTALL_RUNTIME, timeout=timeout)

    def write_project(self, compose_text: str, env_text: str, *, timeout: float = 60.0) -> None:
        """``compose.yaml`` and ``.env`` (mode 0600: it holds the generated secrets)."""
        self._exec(_MAKE_DIR, self.directory, timeout=timeout)
        self._shell.pct_push(self._node, self._vmid, compose_text.encode(), f"{self.directory}/compose.yaml",
                             mode=0o640, timeout=timeout)
        self._shell.pct_push(self._node, self._vmid, env_text.encode(), f"{self.directory}/.env",
                             mode=0o600, timeout=timeout)

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
        result = self._shell.pct_exec(self._node, self._vmid, _DIGESTS, args=(self.directory, self.project),
                                      timeout=timeout)
        digests: dict[str, str] = {}
        for line in result.stdout.splitlines():
            image, _, repo_digest = line.partition("\t")
            if image.strip():
                digests[image.strip()] = repo_digest.strip().rpartition("@")[2] if "@" in repo_digest else ""
        return digests

    def down(self, *, timeout: float = 300.0) -> CommandResult:
        return self._exec(_DOWN, self.directory, self.project, timeout=timeout)

    def wait_listening(self, port: int, *, attempts: int = 60) -> CommandResult:
        """Until something listens on ``port`` in the container (one check a second)."""
        return self._exec(_LISTENING, str(port), str(attempts), timeout=attempts * 2 + 30)

    def logs(self, *, tail: int = 200, service: str | None = None, timeout: float = 60.0) -> str:
        result = self._shell.pct_exec(self._node, self._vmid, _LOGS,
                                      args=(self.directory, self.project, str(tail), service or ""),
                                      timeout=timeout)
        return result.stdout
