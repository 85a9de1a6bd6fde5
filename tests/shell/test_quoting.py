"""Property: any string (but NUL) reaches the container shell, and the node, byte for byte.

One connection serves every example (the fixture's NodeShell), so a hundred round trips stay cheap.
NUL bytes cannot travel in an argument vector at all; the shell refuses them (see test_pct_exec).
"""

from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from proximity_sdk.proxmox.shell import NodeShell
from tests.harness.sshd import StandinState

# Every code point but NUL and lone surrogates (which are not text), with the shell's
# favourite troublemakers drawn more often than chance would.
_nasty = st.sampled_from(["'", '"', "$(id)", "`id`", ";", "\n", "\\", "$", "!", "-", "--", "*", "~", "\r", " "])
_any = st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))
text = st.lists(st.one_of(_nasty, _any), max_size=40).map("".join)

_SCRIPT = 'printf %s "$VALUE" > /tmp/env; printf %s "$1" > /tmp/arg1; printf %s "$2" > /tmp/arg2'
_PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@_PROPERTY
@given(value=text, first=text, second=text)
@example(value="", first="", second="")
@example(value='it\'s "$(reboot)" `id`; rm -rf / #', first="-n", second="--")
@example(value="line1\nline2\n\n", first="\u00e9\u4e2d\U0001f600", second="\\'\\''")
def test_env_values_and_script_args_arrive_unchanged(
    node_shell: NodeShell, standin_state: StandinState, value: str, first: str, second: str
) -> None:
    node_shell.pct_exec("pve1", 105, _SCRIPT, env={"VALUE": value}, args=[first, second], timeout=20)

    assert standin_state.ct_path(105, "/tmp/env").read_bytes() == value.encode()
    assert standin_state.ct_path(105, "/tmp/arg1").read_bytes() == first.encode()
    assert standin_state.ct_path(105, "/tmp/arg2").read_bytes() == second.encode()


@_PROPERTY
@given(args=st.lists(text, min_size=1, max_size=4))
@example(args=["", "$HOME", "a b", "'"])
def test_run_arguments_arrive_unchanged_on_the_node(
    node_shell: NodeShell, standin_state: StandinState, args: list[str]
) -> None:
    node_shell.run("pve1", ["pvesm", "status", *args], timeout=20)

    assert standin_state.calls("pvesm")[-1].argv == (b"status", *(a.encode() for a in args))
