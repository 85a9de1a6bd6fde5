"""Debian container templates for the real node, built once with debootstrap and cached.

A template is what PVE's appliance index offers and ``pct create`` unpacks: a compressed tar of a
root filesystem whose members start with ``./``, named ``debian-<major>-standard_<version>-1_amd64``
(see pve-manager's aplinfo and pve-container's ``PVE::LXC::Create``). The real node builds Debian
12 (and 13) with ``debootstrap --variant=minbase`` plus what a container needs to take its DHCP
lease, boot with systemd and run dockerd, and keeps them under ``/var/cache/proximity/templates``.
A second call finds the cached tarball and returns at once; concurrent callers (two test workers)
wait for one build under a file lock.

    python -m proximity_sdk.sandbox._real._templates [bookworm trixie]
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CACHE", "RELEASES", "Template", "build_debian_template", "cached_templates"]

CACHE = Path(os.environ.get("PROXIMITY_TEMPLATE_CACHE", "/var/cache/proximity/templates"))
MIRROR = os.environ.get("PROXIMITY_DEBIAN_MIRROR", "http://deb.debian.org/debian")

#: codename -> Debian major version
RELEASES: dict[str, int] = {"bookworm": 12, "trixie": 13}

# What a PVE "standard" template has that minbase lacks and the node's work needs: the DHCP lease
# (ifupdown + a DHCP client), systemd as init (dockerd starts as a unit), TLS to the package mirror.
_PACKAGES = ("ifupdown", "isc-dhcp-client", "iproute2", "netbase", "ca-certificates", "curl", "systemd-sysv")

_INTERFACES = "auto lo\niface lo inet loopback\n\nauto eth0\niface eth0 inet dhcp\n"


@dataclass(frozen=True)
class Template:
    """A cached template: its PVE file name, where it lies, and the appliance-index entry."""

    codename: str
    major: int
    version: str  # "12.12-1"
    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    def appliance(self) -> dict[str, str]:
        """The entry ``GET /nodes/{node}/aplinfo`` lists for it (fields as PVE's index has them)."""
        return {
            "template": self.name,
            "package": f"debian-{self.major}-standard",
            "os": f"debian-{self.major}",
            "version": self.version,
            "type": "lxc",
            "section": "system",
            "headline": f"Debian {self.major} {self.codename.capitalize()} (standard)",
            "infopage": "https://pve.proxmox.com/wiki/Linux_Container#pct_supported_distributions",
            "location": f"file://{self.path}",
            "source": "built on this node with debootstrap",
        }


def _parse(path: Path) -> Template | None:
    # debian-12-standard_12.12-1_amd64.tar.zst
    stem = path.name
    for codename, major in RELEASES.items():
        prefix = f"debian-{major}-standard_"
        if stem.startswith(prefix) and stem.endswith("_amd64.tar.zst"):
            version = stem[len(prefix) : -len("_amd64.tar.zst")]
            return Template(codename=codename, major=major, version=version, path=path)
    return None


def cached_templates(cache: Path = CACHE) -> list[Template]:
    """The templates already built, oldest release first."""
    if not cache.is_dir():
        return []
    found = [t for t in (_parse(p) for p in sorted(cache.iterdir())) if t is not None]
    return sorted(found, key=lambda t: t.major)


def _run(argv: list[str], *, what: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise RuntimeError(f"{what} failed (exit {result.returncode}):\n{tail}")


def _build(codename: str, cache: Path) -> Template:
    major = RELEASES[codename]
    for tool in ("debootstrap", "zstd", "tar"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"building the Debian {major} template needs {tool}: run scripts/real-node")
    work = Path(tempfile.mkdtemp(prefix=f"build-{codename}-", dir=cache.parent))
    try:
        rootfs = work / "rootfs"
        debs = cache.parent / "debootstrap" / codename
        debs.mkdir(parents=True, exist_ok=True)
        _run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(_PACKAGES)}",
                f"--cache-dir={debs}",
                codename,
                str(rootfs),
                MIRROR,
            ],
            what=f"debootstrap {codename}",
        )
        version = (rootfs / "etc/debian_version").read_text().strip()
        (rootfs / "etc/network").mkdir(parents=True, exist_ok=True)
        (rootfs / "etc/network/interfaces").write_text(_INTERFACES)
        (rootfs / "etc/hostname").write_text("localhost\n")
        # PVE's templates ship no host-specific state: the node's resolver, a machine id, apt lists.
        (rootfs / "etc/resolv.conf").unlink(missing_ok=True)
        (rootfs / "etc/resolv.conf").write_text("")
        (rootfs / "etc/machine-id").write_text("")
        shutil.rmtree(rootfs / "var/lib/apt/lists", ignore_errors=True)
        (rootfs / "var/lib/apt/lists/partial").mkdir(parents=True, exist_ok=True)
        for deb in (rootfs / "var/cache/apt/archives").glob("*.deb"):
            deb.unlink()
        if "." not in version:  # a testing release says "13.0" only once released
            version = f"{major}.0"
        name = f"debian-{major}-standard_{version}-1_amd64.tar.zst"
        partial = work / name
        _run(
            ["tar", "--numeric-owner", "--xattrs", "-C", str(rootfs), "--zstd", "-cf", str(partial), "."],
            what=f"packing {name}",
        )
        target = cache / name
        os.replace(partial, target)
        built = _parse(target)
        assert built is not None
        return built
    finally:
        _remove_build(work)


def _remove_build(work: Path) -> None:
    """Remove a build directory; a failed debootstrap can leave /proc or /sys mounted in it, and a
    recursive delete must never walk into those."""
    prefix = str(work.resolve()) + "/"
    with open("/proc/self/mounts") as fh:
        mounts = [line.split()[1] for line in fh if line.split()[1].startswith(prefix)]
    for mount in sorted(mounts, reverse=True):
        subprocess.run(["umount", "-l", mount], capture_output=True, check=False)
    subprocess.run(["rm", "-rf", "--one-file-system", str(work)], capture_output=True, check=False)


def build_debian_template(codename: str = "bookworm", *, cache: Path = CACHE) -> Template:
    """The cached template of this Debian release, built first when missing (needs root)."""
    if codename not in RELEASES:
        raise ValueError(f"no Debian release {codename!r}: choose one of {', '.join(RELEASES)}")
    major = RELEASES[codename]
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for template in cached_templates(cache):
            if template.major == major:
                return template
        return _build(codename, cache)


def main(argv: list[str]) -> int:
    for codename in argv or ["bookworm"]:
        started = time.monotonic()
        template = build_debian_template(codename)
        print(f"{template.path} ({time.monotonic() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
