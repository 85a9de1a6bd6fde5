"""What the sandbox Proxmox adds for native OCI containers (PVE 9.1): node versions and image pulls.

Stock fakepve answers ``GET /nodes/{node}/version`` with ``"fake"`` in every field and its
``oci-registry-pull`` task stores nothing. Here:

- ``GET /nodes/{node}/version`` answers ``node_versions[node]``, else ``pve.version`` once it was
  set (``pve.version = "9.1.2"`` or ``"8.4.1"`` in a test), else fakepve's ``"fake"`` (a version
  nobody can read: Proximity then takes the node as not OCI-capable);
- ``oci-registry-pull`` is an ``ociregistrypull`` task that stores ``<storage>:vztmpl/<file>.tar``
  (the file name normalized as ``PVE::Storage::normalize_content_filename`` does: everything up to
  the last ``/`` dropped, other characters outside ``[a-zA-Z0-9_.-]`` made ``_``), refusing to
  overwrite an existing file, a storage without ``vztmpl`` content or one that is not file based,
  in PVE's words (pve-storage ``API2/Storage/Status.pm`` ``oci_registry_pull``);
- a container created from a pulled image gets what ``PVE::LXC::Create::restore_oci_archive``
  writes from the image configuration, *over* what the create request gave: ``entrypoint`` (the
  image's Entrypoint + Cmd, unless that is ``/sbin/init``) with ``cmode: console`` and every
  ``netN`` made ``host-managed=1``, and ``env`` (the image's Env, NUL-separated). ``images[reference]``
  sets a reference's configuration (:class:`OciImageConfig`; default: ``PATH`` and
  ``/docker-entrypoint.sh``);
- ``exiting_images``: containers of these references stop right after their start (an app
  whose entrypoint exits), at ``time_scale`` 0;
- ``deaf_images``: the PID 1 of these references' containers has no handler for its stop signal
  (busybox httpd, a shell entrypoint): the kernel drops the signal, so a shutdown without
  ``forceStop`` waits its whole ``timeout`` and fails ``container did not stop``, and with
  ``forceStop`` is killed after it (pve-container ``src/PVE/LXC.pm`` ``vm_stop``: ``lxc-stop
  --nokill`` unless ``forceStop``; real mode shows it with a real busybox, docs/fidelity.md R6);
- a restart migration shuts down without a kill, as PVE's does (pve-container
  ``src/PVE/LXC/Migrate.pm`` ``prepare``: ``vm_stop($vmid, 0, $timeout)``); stock fakepve kills;
- a clone runs what its source runs: PVE's ``clone_vm`` copies ``entrypoint``, ``env`` and the
  image's raw ``lxc`` keys as they are (fakepve's clone copies the config), and the clone's
  ``created_from`` is its source's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fakepve.lxc import split_props
from fakepve.model import PveError, TaskError

__all__ = ["DEFAULT_IMAGE_ENV", "OciImageConfig", "OciMixin", "normalize_content_filename", "pve_kills"]

DEFAULT_IMAGE_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_UNSAFE = re.compile(r"[^a-zA-Z0-9_.-]")
# storage types with a path (PVE refuses to pull into one without: "not a file based storage")
_FILE_BASED = frozenset({"dir", "nfs", "cifs", "cephfs", "glusterfs", "btrfs"})


def normalize_content_filename(name: str) -> str:
    """``PVE::Storage::normalize_content_filename``: the part after the last ``/`` or ``\\``, every
    character outside ``[a-zA-Z0-9_.-]`` replaced by ``_``."""
    return _UNSAFE.sub("_", re.sub(r"^.*[/\\]", "", name.rstrip("\n")))


@dataclass(frozen=True)
class OciImageConfig:
    """The parts of an image's OCI configuration PVE 9.1 copies into the container config."""

    env: tuple[str, ...] = (DEFAULT_IMAGE_ENV,)
    entrypoint: tuple[str, ...] = ("/docker-entrypoint.sh",)
    cmd: tuple[str, ...] = ()

    def init_command(self) -> str | None:
        """``entrypoint`` as PVE writes it: Entrypoint + Cmd joined as a shell command, None for
        an image whose init is ``/sbin/init`` (a system container) or that names none."""
        command = [*self.entrypoint, *self.cmd]
        if not command or command[0] == "/sbin/init":
            return None
        return cmd2string(command)


# String::ShellQuote's characters that need no quoting (its `m|[^\w!%+,\-./:=@^]|` test)
_SHELL_SAFE = re.compile(r"[\w!%+,\-./:=@^]+", re.ASCII)


def cmd2string(command: list[str]) -> str:
    """pve-common ``PVE::Tools::cmd2string``: each argument through ``shellquote``
    (``String::ShellQuote::shell_quote`` of that one argument), joined by spaces.

    shell_quote leaves an argument of safe characters without ``=`` as it is (an ``=`` needs
    quoting when no argument before it in the same call lacked one: cmd2string quotes one argument
    a call, so every ``=`` is quoted); otherwise it wraps the argument in single quotes, each ``'``
    written ``'\\''`` (two or more in a row ``'"''"'``), and drops the ``''`` left at either end.
    Python's ``shlex.join`` writes ``'"'"'`` for every quote: not what PVE writes.
    """
    return " ".join(_shell_quote(arg) for arg in command)


def _shell_quote(arg: str) -> str:
    if arg == "":
        return "''"
    if _SHELL_SAFE.fullmatch(arg) and "=" not in arg:
        return arg
    quoted = arg.replace("'", "'\\''")
    # shell_quote's "make multiple ' in a row look simpler": '\''  '\'' -> '"''"'
    quoted = re.sub(r"((?:'\\''){2,})", lambda m: "'\"" + "'" * (len(m.group(1)) // 4) + "\"'", quoted)
    quoted = f"'{quoted}'"
    return quoted.removeprefix("''").removesuffix("''")


class OciMixin:
    """Mixin of the sandbox's FakePve: see the module docstring."""

    _version_set = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._version_set = False  # fakepve's constructor set its default: not a test's choice
        #: node -> the PVE version that node reports (wins over ``version``)
        self.node_versions: dict[str, str] = {}
        #: every reference pulled, in order
        self.pulled: list[str] = []
        #: reference -> its image configuration (a reference not here gets ``OciImageConfig()``)
        self.images: dict[str, OciImageConfig] = {}
        #: template volid -> the image configuration a container created from it gets
        self.oci_templates: dict[str, OciImageConfig] = {}
        #: template volid -> the reference pulled into it
        self.oci_references: dict[str, str] = {}
        #: vmid -> the pulled template its container was created from
        self.created_from: dict[int, str] = {}
        #: PVE seconds a pull takes
        self.pull_secs = 0.0
        #: references whose entrypoint exits at once: their containers are stopped right after a start
        self.exiting_images: set[str] = set()
        #: references whose PID 1 ignores its stop signal: only a kill (forceStop, status/stop) ends them
        self.deaf_images: set[str] = set()

    @property
    def version(self) -> str:
        return str(self.__dict__.get("_pve_version", "9.0.10"))

    @version.setter
    def version(self, value: str) -> None:
        self.__dict__["_pve_version"] = value
        self._version_set = True

    def _routes_sandbox_oci(self) -> list[tuple[str, str, Any]]:
        return [
            ("GET", "/nodes/{node}/version", self._node_version),
            ("POST", "/nodes/{node}/storage/{storage}/oci-registry-pull", self._oci_pull),
        ]

    async def _node_version(self, v: dict[str, Any], user: str) -> dict[str, str]:
        version = self.node_versions.get(v["node"]) or (self.version if self._version_set else None)
        if version is None:
            return {"version": "fake", "release": "fake", "repoid": "fake"}
        return {"version": version, "release": ".".join(version.split(".")[:2]), "repoid": "0fa4e2b1"}

    async def _oci_pull(self, v: dict[str, Any], user: str) -> str:
        fake: Any = self
        reference, storage = v["reference"], v["storage"]
        store = fake.storages.get(storage)
        if store is None:
            raise PveError(500, f"storage '{storage}' does not exist")
        if store.get("type") not in _FILE_BASED:
            raise PveError(500, f"can't upload to storage type '{store.get('type')}', not a file based storage!")
        if "vztmpl" not in str(store.get("content", "")).split(","):
            raise PveError(500, f"storage '{storage}' is not configured for content-type 'vztmpl'")
        name = normalize_content_filename(v.get("filename") or reference) + ".tar"
        volid = f"{storage}:vztmpl/{name}"
        if f"vztmpl/{name}" in store.get("volumes", {}):
            raise PveError(500, f"refusing to override existing file '{name}'")
        image = self.images.get(reference, OciImageConfig())

        async def body() -> str:
            pulled = await self._oci_fetch(reference, storage, name, image)
            self.pulled.append(reference)
            self.oci_templates[volid] = pulled
            self.oci_references[volid] = reference
            return f"pulled {reference} to '{volid}'"

        # PVE's worker id is the file name (encode_text keeps it free of ':')
        upid: str = await fake.task(v["node"], "ociregistrypull", name, user, body)
        return upid

    async def _oci_fetch(self, reference: str, storage: str, name: str, image: OciImageConfig) -> OciImageConfig:
        """The pull task's work: store ``<storage>:vztmpl/<name>``; the configuration of the image
        pulled (real mode fetches the image for real and reads it from the archive)."""
        fake: Any = self
        await fake.pause(self.pull_secs)
        fake.store_file(storage, name, 64 * 1024**2, content="vztmpl")
        return image

    async def _lxc_create(self, user: str, v: dict[str, Any]) -> Any:
        image = self.oci_templates.get(str(v.get("ostemplate")))
        if image is not None and not v.get("restore"):
            # restore_oci_archive runs after the request's options were applied and overwrites them
            v = dict(v)
            command = image.init_command()
            if command is not None:
                v["entrypoint"] = command
                v["cmode"] = "console"
                for key in [k for k in v if k.startswith("net") and k[3:].isdigit()]:
                    name, props = split_props(str(v[key]))
                    if "host-managed" not in props:
                        v[key] = ",".join(
                            ([name] if name else []) + [f"{k}={x}" for k, x in props.items()] + ["host-managed=1"]
                        )
            if image.env:
                v["env"] = "\0".join(image.env)
            self.created_from[int(v["vmid"])] = str(v["ostemplate"])
        return await super()._lxc_create(user, v)  # type: ignore[misc]

    async def _lxc_clone(self, user: str, v: dict[str, Any]) -> Any:
        upid = await super()._lxc_clone(user, v)  # type: ignore[misc]
        origin = self.created_from.get(int(v["vmid"]))
        if origin is not None:
            self.created_from[int(v["newid"])] = origin  # the copied disk holds the same image
        return upid

    async def _lxc_start(self, user: str, v: dict[str, Any]) -> Any:
        fake: Any = self
        upid = await super()._lxc_start(user, v)  # type: ignore[misc]
        ct = fake.ct(int(v["vmid"]))
        origin = self.oci_references.get(self.created_from.get(int(v["vmid"]), ""))
        if origin in self.exiting_images and not fake.time_scale and ct is not None and ct.status == "running":
            ct.status = "stopped"  # the entrypoint exited: PVE stops an application container then
        return upid

    async def _ct_powerdown(self, ct: Any, timeout: Any, force: bool) -> None:
        fake: Any = self
        force = pve_kills(ct, force)
        origin = self.oci_references.get(self.created_from.get(int(ct.vmid), ""))
        if origin in self.deaf_images and ct.status == "running":
            await fake.pause(float(timeout))  # lxc-stop waits the whole timeout: the signal was dropped
            if not force:
                raise TaskError("container did not stop")
            ct.status = "stopped"
            ct.pid = None
            return
        await super()._ct_powerdown(ct, timeout, force)  # type: ignore[misc]


def pve_kills(ct: Any, force: bool) -> bool:
    """Whether PVE's ``vm_stop`` kills after the timeout: a restart migration's shutdown never does
    (Migrate.pm ``prepare`` calls ``vm_stop($vmid, 0, $timeout)``: ``lxc-stop --nokill``), whatever
    fakepve's migrate asks (it kills)."""
    return force and ct.lock != "migrate"
