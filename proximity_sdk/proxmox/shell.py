"""The node shell: commands on a Proxmox node over SSH, and in its containers through ``pct``.

Every value that reaches a shell is quoted with :func:`shlex.quote`; ``pct exec`` receives the
whole inner script as ONE argument, and environment values are exported inside that script,
quoted again, so any string arrives in the container byte for byte. A NUL byte cannot travel
through an argument vector, so strings holding one are refused (:class:`ValidationError`).

Connections are opened on first use per node, cached, shared by threads (each command is its own
SSH channel, at most ``max_sessions`` at once per node, below OpenSSH's default ``MaxSessions``
of 10) and closed by :meth:`NodeShell.close`.

Every command runs under coreutils ``timeout`` on the node, so a command we gave up on is also
ended there (closing the SSH channel alone would leave it running). TCP_NODELAY is set on the
connection: without it each command waits out a delayed ACK (~40 ms).

Secrets: pass them as ``env`` values of :meth:`NodeShell.pct_exec` (or as ``input``). Env values
are never logged nor put in an error message; argument vectors and scripts are not logged either.
"""

from __future__ import annotations

import contextlib
import logging
import select
import shlex
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Literal

import paramiko

from proximity_sdk.errors import (
    CommandFailedError,
    CommandTimeoutError,
    NodeShellError,
    UnreachableError,
    ValidationError,
)
from proximity_sdk.models.ssh import SshAccess
from proximity_sdk.proxmox._shell_checks import (
    bounded,
    check_argv,
    check_command_timeout,
    check_container_path,
    check_node,
    check_text,
    check_vmid_int,
    compose_script,
)
from proximity_sdk.proxmox._ssh import HostKeyStore, load_private_key, open_client

__all__ = ["CommandResult", "NodeShell", "OutputCallback", "OutputStream"]

_log = logging.getLogger(__name__)

OutputStream = Literal["stdout", "stderr"]
#: Called with ("stdout" | "stderr", line) for each line as it arrives (no trailing newline).
OutputCallback = Callable[[OutputStream, str], None]

_TAIL_LINES = 20
_TMP_DIR = "/tmp"  # noqa: S108 - on the node; names are random and files created exclusively, mode 0600


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What a finished command left: its exit status, output (UTF-8, invalid bytes replaced), time."""

    exit_status: int
    stdout: str
    stderr: str
    duration: float


# Seconds to wait before asking again when a live connection refuses a session (sum: 3.1 s).
_REFUSAL_BACKOFF = (0.1, 0.2, 0.4, 0.8, 1.6)
# What an SSH connection that broke asks of the user (UnreachableError's own hint is the API's)
_SSH_HINT = "Check that the node's sshd runs and is reachable at its SSH address (SshAccess.addresses); retry"
# a line longer than this is cut in what callbacks and the failure tail see (the full output stays in data)
_MAX_LINE = 64 * 1024


class _Connection:
    def __init__(self, client: paramiko.SSHClient, max_sessions: int) -> None:
        self.client = client
        self.sessions = threading.BoundedSemaphore(max_sessions)

    def alive(self) -> bool:
        transport = self.client.get_transport()
        return transport is not None and transport.is_active()


class _Lines:
    """Splits one output stream into lines as bytes arrive; keeps everything and the last lines."""

    def __init__(self, stream: OutputStream, callback: OutputCallback | None) -> None:
        self.stream: OutputStream = stream
        self._callback = callback
        # the unfinished last line, at most _MAX_LINE bytes: each chunk is looked at once (linear
        # in the output, however long a line without a newline grows)
        self._pending = bytearray()
        self._cut = False
        self.data = bytearray()
        self.tail: deque[str] = deque(maxlen=_TAIL_LINES)

    def feed(self, chunk: bytes) -> None:
        self.data += chunk
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            self._append(chunk[start:end])
            self._flush()
            start = end + 1
        self._append(chunk[start:])

    def _append(self, part: bytes) -> None:
        room = _MAX_LINE - len(self._pending)
        if len(part) > room:
            part = part[: max(room, 0)]
            self._cut = True
        self._pending += part

    def _flush(self) -> None:
        raw = bytes(self._pending)
        if self._cut:
            raw += b" [line cut at %d bytes]" % _MAX_LINE
        self._pending = bytearray()
        self._cut = False
        self._emit(raw)

    def finish(self) -> None:
        if self._pending or self._cut:
            self._flush()

    def _emit(self, raw: bytes) -> None:
        line = raw.decode("utf-8", errors="replace").removesuffix("\r")
        self.tail.append(line)
        if self._callback is not None:
            self._callback(self.stream, line)

    def text(self) -> str:
        return bytes(self.data).decode("utf-8", errors="replace")


def _with_stdin(command: str, size: int) -> str:
    """``command`` reading exactly ``size`` bytes of the channel's input, then end of input
    (``/dev/null`` when there is none), the end made on the node.

    We never half-close the channel ourselves: paramiko marks its end-of-input as sent under the
    channel's lock but sends it after releasing it, so a command that ends in between has its
    close answered by the transport thread first, our end-of-input arrives for a channel sshd has
    already freed, and sshd drops the whole connection with every command on it. Without that
    message, paramiko's own close sends end-of-input and close together, in order. The braces
    keep a compound line (``...; exit $s``) whole under the redirection."""
    if size == 0:
        return f"{{ {command}\n}} </dev/null"
    return f"head -c {size} | {{ {command}\n}}"


class NodeShell:
    """Commands on Proxmox nodes over SSH (paramiko), with one cached connection per node.

    ``access`` says how to reach the nodes. The private key is ``private_key`` (key text) or
    ``access.key_file`` (a path, or the key text itself as the remote SDK sends it); with neither,
    the SSH agent and ~/.ssh keys are tried. Host keys are checked against ``known_hosts_text`` or
    ``access.known_hosts`` (a path or known_hosts text; default ~/.ssh/known_hosts): unknown and
    changed keys raise :class:`HostKeyError`, unless ``access.trust_on_first_use`` lets an unknown
    key be pinned (appended to the file, or reported to ``on_host_key_pinned`` as a line).
    """

    def __init__(
        self,
        access: SshAccess,
        *,
        private_key: str | None = None,
        key_passphrase: str | None = None,
        known_hosts_text: str | None = None,
        on_host_key_pinned: Callable[[str], None] | None = None,
        pinned_known_hosts: Callable[[], str] | None = None,
        accept_hint: str | None = None,
        max_sessions: int = 8,
    ) -> None:
        if not 1 <= max_sessions <= 64:
            raise ValidationError(f"max_sessions must be from 1 to 64, not {max_sessions}", field="max_sessions")
        self._access = access
        key_source = private_key if private_key is not None else access.key_file
        self._pkey = load_private_key(key_source, passphrase=key_passphrase) if key_source else None
        # pinned_known_hosts: the keys pinned in the database, read at each connect (they outlive this process)
        if known_hosts_text is not None:
            self._hosts = HostKeyStore(
                known_hosts_text,
                text=True,
                on_pin=on_host_key_pinned,
                pinned=pinned_known_hosts,
                accept_hint=accept_hint,
            )
        else:
            self._hosts = HostKeyStore(
                access.known_hosts, on_pin=on_host_key_pinned, pinned=pinned_known_hosts, accept_hint=accept_hint
            )
        self._max_sessions = max_sessions
        self._lock = threading.Lock()
        self._node_locks: dict[str, threading.Lock] = {}
        self._connections: dict[str, _Connection] = {}
        self._closed = False

    # -- connections ---------------------------------------------------------------------------

    def _connection(self, node: str, *, stale: _Connection | None = None) -> _Connection:
        """The node's cached connection, connecting first if there is none or it is ``stale``."""
        with self._lock:
            if self._closed:
                raise ValidationError("this NodeShell is closed", hint="Create a new NodeShell")
            node_lock = self._node_locks.setdefault(node, threading.Lock())
        with node_lock:  # one connect per node at a time; other nodes connect in parallel
            with self._lock:
                current = self._connections.get(node)
            if current is not None and current is not stale and current.alive():
                return current
            if current is not None:
                current.client.close()
            client = open_client(
                node=node,
                address=self._access.address_of(node),
                port=self._access.port,
                user=self._access.user,
                pkey=self._pkey,
                store=self._hosts,
                trust_on_first_use=self._access.trust_on_first_use,
                connect_timeout=self._access.connect_timeout,
            )
            connection = _Connection(client, self._max_sessions)
            with self._lock:
                if self._closed:
                    client.close()
                    raise ValidationError("this NodeShell is closed", hint="Create a new NodeShell")
                self._connections[node] = connection
            return connection

    @contextlib.contextmanager
    def _session(self, node: str) -> Iterator[tuple[_Connection, paramiko.Channel]]:
        """A session channel on the node's connection, within its session limit.

        A cached connection found dead is replaced once; nothing has run yet, so that is safe.
        """
        stale: _Connection | None = None
        refusals = 0
        attempt = 0
        while True:
            attempt += 1
            connection = self._connection(node, stale=stale)
            with connection.sessions:
                transport = connection.client.get_transport()
                try:
                    if transport is None:
                        raise paramiko.SSHException("no transport")
                    channel = transport.open_session(timeout=self._access.connect_timeout)
                except (paramiko.SSHException, EOFError, OSError) as exc:
                    if connection.alive():
                        # A live connection refused a channel. sshd counts a session until it has
                        # processed our close, so right after many commands a few closes may still be
                        # in flight: wait a little for them. Reconnecting would break the commands
                        # running on this connection, and would not help.
                        refusals += 1
                        if refusals <= len(_REFUSAL_BACKOFF):
                            time.sleep(_REFUSAL_BACKOFF[refusals - 1])
                            attempt -= 1
                            continue
                        raise NodeShellError(
                            f"node {node} refused a new SSH session: {exc}",
                            hint=f"The node's sshd may allow fewer sessions per connection (MaxSessions) "
                            f"than max_sessions={self._max_sessions}; lower max_sessions",
                        ) from None
                    if attempt >= 2:
                        raise UnreachableError(
                            f"cannot open an SSH session on node {node}: {exc}", hint=_SSH_HINT
                        ) from None
                    _log.info("SSH connection to node %s was lost; reconnecting", node)
                    stale = connection
                    continue
                try:
                    yield connection, channel
                finally:
                    channel.close()
                return

    def close(self) -> None:
        """Close every cached connection. The shell cannot be used afterwards."""
        with self._lock:
            self._closed = True
            connections, self._connections = list(self._connections.values()), {}
        for connection in connections:
            connection.client.close()

    def __enter__(self) -> NodeShell:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- commands ------------------------------------------------------------------------------

    def run(
        self,
        node: str,
        argv: Sequence[str],
        *,
        timeout: float,
        on_output: OutputCallback | None = None,
        input: bytes | None = None,
        check: bool = True,
    ) -> CommandResult:
        """Run ``argv`` on ``node`` (each element quoted; the node's login shell parses the line).

        ``argv[0]`` must be a program (it runs under coreutils `timeout`, which bounds it on the
        node as well). Raises :class:`CommandFailedError` on a non-zero exit (unless
        ``check=False``) and :class:`CommandTimeoutError` when ``timeout`` seconds pass.
        """
        node = check_node(node)
        args = check_argv(argv)
        seconds = check_command_timeout(timeout)
        return self._execute(
            node,
            bounded(args, seconds),
            timeout=seconds,
            on_output=on_output,
            input=input,
            check=check,
            what=f"{args[0]} on node {node}",
        )

    def pct_exec(
        self,
        node: str,
        vmid: int,
        script: str,
        *,
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
        timeout: float,
        on_output: OutputCallback | None = None,
        input: bytes | None = None,
        check: bool = True,
    ) -> CommandResult:
        """Run ``script`` with ``sh -c`` inside container ``vmid`` via ``pct exec``.

        ``env`` is exported at the top of the script (values quoted, never logged); ``args``
        become the script's positional parameters ``$1``, ``$2``, ...
        """
        node = check_node(node)
        vmid = check_vmid_int(vmid)
        full = compose_script(script, env)
        positional = [check_text(arg, "args") for arg in args] if not isinstance(args, str) else None
        if positional is None:
            raise ValidationError("args must be a sequence of strings, not one string", field="args")
        argv = ["pct", "exec", str(vmid), "--", "sh", "-c", full]
        if positional:
            argv += ["sh", *positional]  # "sh" becomes $0
        seconds = check_command_timeout(timeout)
        return self._execute(
            node,
            bounded(argv, seconds),
            timeout=seconds,
            on_output=on_output,
            input=input,
            check=check,
            what=f"script in container {vmid} on node {node}",
        )

    def pct_push(
        self,
        node: str,
        vmid: int,
        data: bytes,
        dest: str,
        *,
        mode: int = 0o644,
        user: int | None = None,
        group: int | None = None,
        timeout: float,
    ) -> None:
        """Write ``data`` to the file ``dest`` in container ``vmid`` (its directory must exist).

        The bytes go by SFTP to a private temporary file on the node (mode 0600), then
        ``pct push`` copies them in with ``mode`` (and ``user``/``group`` ids), then the
        temporary file is removed, whatever happened.
        """
        node = check_node(node)
        vmid = check_vmid_int(vmid)
        dest = check_container_path(dest, "dest")
        seconds = check_command_timeout(timeout)
        if not isinstance(data, bytes | bytearray | memoryview):
            raise ValidationError("data must be bytes", field="data")
        if isinstance(mode, bool) or not isinstance(mode, int) or not 0 <= mode <= 0o7777:
            raise ValidationError(f"mode must be a permission number such as 0o644, not {mode!r}", field="mode")
        for name, owner in (("user", user), ("group", group)):
            if owner is not None and (isinstance(owner, bool) or not isinstance(owner, int) or owner < 0):
                raise ValidationError(f"{name} must be a numeric id (0 or more)", field=name)
        deadline = time.monotonic() + seconds
        tmp = f"{_TMP_DIR}/.proximity-push-{uuid.uuid4().hex}"
        self._upload(node, tmp, bytes(data), timeout=seconds)
        argv = ["pct", "push", str(vmid), tmp, dest, "--perms", f"{mode:04o}"]
        if user is not None:
            argv += ["--user", str(user)]
        if group is not None:
            argv += ["--group", str(group)]
        # Removing the temporary file is part of the same command line, so it happens even when
        # pct fails or is ended by `timeout`.
        remaining = max(deadline - time.monotonic(), 0.001)
        line = f"{bounded(argv, remaining)}; s=$?; rm -f -- {shlex.quote(tmp)}; exit $s"
        self._execute(
            node,
            line,
            timeout=remaining,
            on_output=None,
            input=None,
            check=True,
            what=f"pct push to {dest} in container {vmid} on node {node}",
        )

    def pct_pull(self, node: str, vmid: int, path: str, *, timeout: float) -> bytes:
        """The bytes of file ``path`` in container ``vmid`` (via ``pct pull`` and a temporary file)."""
        node = check_node(node)
        vmid = check_vmid_int(vmid)
        path = check_container_path(path, "path")
        seconds = check_command_timeout(timeout)
        tmp = f"{_TMP_DIR}/.proximity-pull-{uuid.uuid4().hex}"
        pull = bounded(["pct", "pull", str(vmid), path, tmp, "--perms", "0600"], seconds)
        line = f"{pull} && cat -- {shlex.quote(tmp)}; s=$?; rm -f -- {shlex.quote(tmp)}; exit $s"
        out = bytearray()
        self._execute(
            node,
            line,
            timeout=seconds,
            on_output=None,
            input=None,
            check=True,
            what=f"pct pull of {path} from container {vmid} on node {node}",
            raw_stdout=out,
        )
        return bytes(out)

    # -- machinery -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def sftp(self, node: str, *, timeout: float = 600.0) -> Iterator[paramiko.SFTPClient]:
        """An SFTP session on the node's connection (within its session limit), for files on the
        node itself such as backup archives. Transport failures raise :class:`UnreachableError`."""
        with self._session(check_node(node)) as (_, channel):
            try:
                channel.settimeout(timeout)
                channel.invoke_subsystem("sftp")
                client = paramiko.SFTPClient(channel)
            except (TimeoutError, paramiko.SSHException, OSError, EOFError) as exc:
                raise UnreachableError(f"no SFTP session on node {node}: {exc}", hint=_SSH_HINT) from None
            try:
                yield client
            finally:
                client.close()

    def _upload(self, node: str, path: str, data: bytes, *, timeout: float) -> None:
        try:
            with self.sftp(node, timeout=timeout) as sftp, sftp.open(path, "wbx") as fh:
                # exclusive create: never write through a planted file
                fh.chmod(0o600)
                fh.write(data)
        except (TimeoutError, paramiko.SSHException, OSError, EOFError) as exc:
            raise UnreachableError(
                f"uploading {len(data)} bytes to node {node} over SFTP failed: {exc}", hint=_SSH_HINT
            ) from None

    def _execute(
        self,
        node: str,
        command: str,
        *,
        timeout: float,
        on_output: OutputCallback | None,
        input: bytes | None,
        check: bool,
        what: str,
        raw_stdout: bytearray | None = None,
    ) -> CommandResult:
        if input is not None and not isinstance(input, bytes | bytearray | memoryview):
            raise ValidationError("input must be bytes (encode text first)", field="input")
        started = time.monotonic()
        deadline = started + timeout
        stdout = _Lines("stdout", on_output)
        stderr = _Lines("stderr", on_output)
        _log.debug("running %s", what)
        with self._session(node) as (connection, channel):
            try:
                channel.settimeout(max(deadline - time.monotonic(), 0.001))
                channel.exec_command(_with_stdin(command, len(input) if input else 0))
                if input:
                    channel.sendall(input)
                status = self._collect(channel, stdout, stderr, deadline=deadline, what=what, timeout=timeout)
            except (CommandTimeoutError, TimeoutError):
                # The channel is closed on the way out; the node's `timeout` wrapper ends the command.
                raise CommandTimeoutError(f"{what} did not finish within {timeout:g}s") from None
            except (paramiko.SSHException, EOFError, ConnectionError) as exc:
                raise UnreachableError(
                    f"the SSH connection to node {node} failed during {what}: {exc}", hint=_SSH_HINT
                ) from None
            if status == -1 and not connection.alive():
                raise UnreachableError(f"the SSH connection to node {node} was lost during {what}", hint=_SSH_HINT)
        stdout.finish()
        stderr.finish()
        if raw_stdout is not None:
            raw_stdout += stdout.data
        result = CommandResult(
            exit_status=status,
            stdout=stdout.text(),
            stderr=stderr.text(),
            duration=time.monotonic() - started,
        )
        _log.debug("%s exited %d after %.3fs", what, status, result.duration)
        if check and status != 0:
            tail = stderr.tail if stderr.tail else stdout.tail
            raise CommandFailedError(f"{what} failed", exit_status=status, stderr_tail="\n".join(tail))
        return result

    @staticmethod
    def _collect(
        channel: paramiko.Channel,
        stdout: _Lines,
        stderr: _Lines,
        *,
        deadline: float,
        what: str,
        timeout: float,
    ) -> int:
        def drain() -> None:
            while channel.recv_ready():
                stdout.feed(channel.recv(65536))
            while channel.recv_stderr_ready():
                stderr.feed(channel.recv_stderr(65536))

        def remaining() -> float:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CommandTimeoutError(f"{what} did not finish within {timeout:g}s")
            return left

        while True:
            drain()
            if channel.eof_received or channel.closed:
                # All output is in once EOF came; the exit status may still be on its way.
                if not channel.recv_ready() and not channel.recv_stderr_ready():
                    if not channel.status_event.wait(remaining()):
                        raise CommandTimeoutError(f"{what} did not finish within {timeout:g}s")
                    drain()
                    return channel.recv_exit_status()
                continue
            select.select([channel], [], [], remaining())
