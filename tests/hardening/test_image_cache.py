"""Issue 15: the OCI image cache: distinct references never share a file; floating tags are pulled
again (once a day) instead of never."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proximity_sdk.models._requests import REFERENCE_PATTERN
from proximity_sdk.proxmox.client import ProxmoxClient
from proximity_sdk.proxmox.oci import pull_image, template_file
from tests.harness.pve import HarnessPve

DAY = datetime(2026, 12, 6, 12, tzinfo=UTC)


def test_the_reported_collision_is_gone() -> None:
    assert template_file("docker.io/library/nginx:1.27") != template_file("docker.io/library_nginx:1.27")
    assert template_file("host:5000/x:1") != template_file("host/5000/x:1")


_component = st.from_regex(r"[a-z0-9]{1,4}(?:(?:[._]|__|-)[a-z0-9]{1,3})?", fullmatch=True)
_reference = st.builds(
    lambda domain, port, parts, tag: (f"{domain}{port}/" if domain else "") + "/".join(parts) + f":{tag}",
    st.sampled_from(["", "ghcr.io", "registry.local", "host"]),
    st.sampled_from(["", ":5000"]),
    st.lists(_component, min_size=1, max_size=3),
    st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,6}", fullmatch=True),
).filter(lambda r: bool(REFERENCE_PATTERN.match(r)) and "/:" not in r)


@settings(max_examples=500, deadline=None)
@given(st.lists(_reference, min_size=2, max_size=6, unique=True))
def test_fuzz_distinct_references_get_distinct_files(references: list[str]) -> None:
    names = [template_file(r, now=DAY) for r in references]
    assert len(set(names)) == len(names), list(zip(references, names, strict=True))


@pytest.mark.pve9_only
def test_a_floating_tag_is_pulled_again_on_a_new_day_a_pinned_one_never(
    pve: HarnessPve, pve_client: ProxmoxClient
) -> None:
    for day in (DAY, DAY + timedelta(hours=1), DAY + timedelta(days=1)):
        pull_image(pve_client, "pve1", storage="local", reference="docker.io/library/nginx:latest", now=day)
        pull_image(pve_client, "pve1", storage="local", reference="docker.io/library/nginx:1.27", now=day)
    assert pve.pulled.count("docker.io/library/nginx:latest") == 2  # the first day, then the next
    assert pve.pulled.count("docker.io/library/nginx:1.27") == 1
