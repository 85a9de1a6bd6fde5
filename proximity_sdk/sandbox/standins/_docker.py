"""The `docker` stand-in's image store: what a registry serves and what each container has pulled.

``<state>/registry.json`` maps an image reference (``name:tag``) to the digest the registry serves
now (``sha256:...``); an image never published there gets a stable digest made from its name.
``/var/lib/docker/standin-images.json`` *inside the container* maps a reference to the digest
pulled there: like Docker's own image store it is part of the container's files, so a backup
holds it and a restore brings it back.

- ``docker compose ... config --images``: the images of ``compose.yaml`` (JSON) in the cwd;
- ``docker compose ... pull``: every image of the project takes the registry's digest;
- ``docker compose ... up``: pulls the images the container does not have yet;
- ``docker compose ... logs [--tail N] [service]``: one line per service of ``compose.yaml`` saying
  it stands in (nothing really runs); an unknown service fails as compose does (exit 1);
- ``docker image inspect --format ... <ref>``: ``<name>@<digest>`` of the pulled image (exit 1
  with Docker's message when it was never pulled).
- ``docker ps -a -q ... --filter label=com.docker.compose.project=<p>`` (the health check): one
  container id per service of ``compose.yaml`` in the cwd; ``docker inspect --format ... <ids>``:
  ``/<p>-<service>-1 running 0 -`` for each (name, status, restart count, healthcheck status), as
  the health check's format asks. Script docker.json rules to show a crash loop.

Scripted rules (rules/docker.json) still come first; every call is recorded.
"""

from __future__ import annotations

import os
import sys

from _standin import answer, locked, record, state_dir, take_rule

VERSIONS = {
    "--version": "Docker version 27.3.1, build standin\n",
    "compose version": "Docker Compose version v2.29.7\n",
    "version": "Client: Docker Engine - Community\n Version: 27.3.1\n",
}


def _load(path: str) -> dict[str, str]:
    import json

    try:
        with open(path, encoding="utf-8") as fh:
            data: dict[str, str] = json.load(fh)
            return data
    except FileNotFoundError:
        return {}


def _store(path: str, data: dict[str, str]) -> None:
    import json

    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w", encoding="utf-8") as fh:
        json.dump(data, fh, sort_keys=True)
    os.replace(path + ".tmp", path)


def _reference(image: str) -> str:
    last = image.rsplit("/", 1)[-1]
    return image if ":" in last or "@" in last else image + ":latest"


def _published(state: str, ref: str) -> str:
    digest = _load(os.path.join(state, "registry.json")).get(ref)
    if digest:
        return digest
    import hashlib

    return "sha256:" + hashlib.sha256(ref.encode()).hexdigest()


def _project_images(*, required: bool = True) -> list[str]:
    """The images of ``compose.yaml`` in the cwd. Without one, ``config`` fails as compose does (exit
    14); ``pull`` and ``up`` (``required=False``) pull nothing, for tests that run compose commands
    in a bare container."""
    import json

    try:
        with open("compose.yaml", encoding="utf-8") as fh:
            compose = json.load(fh)
    except (OSError, ValueError) as exc:
        if not required:
            return []
        sys.stderr.write(f"no compose.yaml (JSON) here: {exc}\n")
        raise SystemExit(14) from None
    return [_reference(str(s["image"])) for s in compose.get("services", {}).values() if s.get("image")]


_IMAGES = "/var/lib/docker/standin-images.json"


def _logs(project: str, rest: list[str]) -> int:
    """What ``docker compose logs`` prints, made up from the project: nothing runs in the sandbox."""
    import json

    with open("compose.yaml", encoding="utf-8") as fh:
        services: dict[str, dict[str, object]] = json.load(fh).get("services", {})
    named = [a for i, a in enumerate(rest) if not a.startswith("-") and not (i and rest[i - 1] == "--tail")]
    for name in named:
        if name not in services:
            sys.stderr.write(f"no such service: {name}\n")
            return 1
    width = max((len(f"{project}-{n}-1") for n in services), default=0)
    for name in named or sorted(services):
        label = f"{project}-{name}-1".ljust(width)
        sys.stdout.write(
            f"{label}  | {services[name].get('image', '-')}: started by the sandbox's docker "
            "stand-in (nothing really runs here)\n"
        )
    return 0


def _pull(state: str, images: list[str], *, missing_only: bool) -> None:
    if not images:
        return
    path = _IMAGES
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with locked(path + ".lock"):
        pulled = _load(path)
        for ref in images:
            if missing_only and ref in pulled:
                continue
            pulled[ref] = _published(state, ref)
            sys.stdout.write(f"{ref}: Pulled\n")
        _store(path, pulled)


_VALUED = {"--file", "-f", "--project-name", "-p", "--env-file", "--profile", "--project-directory"}


def _subcommand(args: list[str]) -> tuple[str, list[str]]:
    """``docker compose``'s subcommand (after its global options) and the arguments that follow it."""
    i = 0
    while i < len(args):
        if args[i] in _VALUED:
            i += 2
        elif args[i].startswith("-"):
            i += 1
        else:
            return args[i], args[i + 1 :]
    return "", []


def _project_name(args: list[str]) -> str:
    for i, arg in enumerate(args[:-1]):
        if arg in ("--project-name", "-p"):
            return args[i + 1]
    return os.path.basename(os.getcwd())


def _project_containers(args: list[str]) -> dict[str, str]:
    """Container id -> ``/<project>-<service>-1`` for the services of ``compose.yaml`` in the cwd."""
    import hashlib
    import json

    label = "label=com.docker.compose.project="
    project = next((a[len(label) :] for a in args if a.startswith(label)), "")
    try:
        with open("compose.yaml", encoding="utf-8") as fh:
            services = json.load(fh).get("services", {})
    except (OSError, ValueError):
        return {}
    if not project:
        project = os.path.basename(os.getcwd())
    return {hashlib.sha256(f"{project}/{name}".encode()).hexdigest(): f"/{project}-{name}-1" for name in services}


def main(args: list[str]) -> int:
    state = state_dir()
    record(state, "docker", args)
    rule = take_rule(state, "docker", args)
    if rule is not None:
        return answer(rule)
    joined = " ".join(args)
    if args[:1] == ["compose"] and len(args) > 1:
        command, rest = _subcommand(args[1:])
        if command == "config" and "--images" in rest:
            sys.stdout.write("".join(f"{ref}\n" for ref in _project_images()))
        elif command == "pull":
            _pull(state, _project_images(required=False), missing_only=False)
        elif command == "up":
            _pull(state, _project_images(required=False), missing_only=True)
        elif command == "version":
            sys.stdout.write(VERSIONS["compose version"])
        elif command == "logs":
            return _logs(_project_name(args[1:]), rest)
        return 0
    if args[:1] == ["ps"]:
        sys.stdout.write("".join(f"{cid}\n" for cid in _project_containers(args)))
        return 0
    if args[:1] == ["inspect"]:
        ids = [a for a in args[1:] if not a.startswith("-") and "{{" not in a]
        known = _project_containers(["label=com.docker.compose.project=" + os.path.basename(os.getcwd())])
        for cid in ids:
            name = known.get(cid, "/" + cid[:12])
            sys.stdout.write(f"{name} running 0 -\n")
        return 0
    if args[:2] == ["image", "inspect"]:
        refs = [a for a in args[2:] if not a.startswith("-") and "{{" not in a]
        pulled = _load(_IMAGES)
        for ref in refs:
            digest = pulled.get(_reference(ref))
            if digest is None:
                sys.stderr.write(f"Error response from daemon: No such image: {ref}\n")
                return 1
            name = _reference(ref).rsplit(":", 1)[0]
            sys.stdout.write(f"{name}@{digest}\n")
        return 0
    for prefix, text in VERSIONS.items():
        if joined.startswith(prefix):
            sys.stdout.write(text)
            break
    return 0
