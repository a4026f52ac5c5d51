"""Who is at the other end of a local connection, as the operating system says (issue #16).

Stock ``jupyter server stop PORT`` POSTs ``/api/shutdown`` with the token of the server's
``jpserver-<pid>.json``, which hardened-server never fills (SECURITY.md, "Stopping a server").
Its fallback, five seconds later, is ``SIGTERM``, which the kernel lets only the server's own user
(or root) send. This module lets the server take that same authority from the connection itself:
the process at the other end of a loopback TCP connection (or of the server's Unix socket) is
found in ``/proc``, and the stop is accepted when that process

* runs as the server's user (``kill`` would be allowed: same uid),
* lives in the server's PID namespace (it could name the server's pid to ``kill``),
* is not the server itself (jupyter-server-proxy forwards other people's requests from inside
  the server process), and
* is stock's stop command: its argument vector runs ``jupyter-server stop`` (what ``jupyter
  server stop`` executes) or ``-m jupyter_server stop``.

The last condition is what keeps a *forwarder* out: a tunnel agent, ``ssh``, ``socat`` or a
proxy running as the same user connects from a process of that user on behalf of someone else
(a confused deputy); none of them is a ``jupyter-server stop`` process, which sends exactly one
request of its own. Nothing here is a credential: no string grants anything, and every check
reads what the kernel reports about live processes. Linux only (``/proc``); elsewhere
:func:`peer_process` answers ``None`` and the stop is refused as before.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "PeerProcess",
    "is_stock_stop_command",
    "may_stop_this_server",
    "parse_proc_net_address",
    "peer_process",
]

_PROC = Path("/proc")
# struct ucred: pid, uid, gid (Linux SO_PEERCRED)
_UCRED = struct.Struct("3i")
# A stock stop process's argument vector is short; a longer one is not it (and is not read).
_MAX_CMDLINE = 4096
# Programs whose first argument is the script they run (named in the description).
_INTERPRETERS = frozenset({"python", "node", "perl", "ruby", "sh", "bash", "dash", "zsh"})


@dataclass(frozen=True)
class PeerProcess:
    """A live process at the other end of a connection, as ``/proc`` describes it."""

    pid: int
    uid: int
    argv: tuple[str, ...]
    same_pid_namespace: bool

    def describe(self) -> str:
        """For the log and the record: pid, uid and the program, never the rest of the
        argument vector (another process's arguments may hold anything, a password included):
        the first argument's base name and, after an interpreter, the script's."""
        program = [os.path.basename(self.argv[0])[:64]] if self.argv else ["?"]
        interpreter = program[0].rstrip("0123456789.") in _INTERPRETERS
        if interpreter and len(self.argv) > 1 and not self.argv[1].startswith("-"):
            program.append(os.path.basename(self.argv[1])[:64])
        if is_stock_stop_command(self.argv):
            program.append("stop")
        return f"pid {self.pid}, uid {self.uid}, program {' '.join(program)!r}"


def is_stock_stop_command(argv: tuple[str, ...] | list[str]) -> bool:
    """``jupyter-server stop ...`` (the script ``jupyter server stop`` executes, run by its
    interpreter or directly) or ``python -m jupyter_server stop ...``."""
    args = list(argv)
    first = os.path.basename(args[0]) if args else ""
    if first == "jupyter-server":
        return args[1:2] == ["stop"]
    if not first.startswith("python"):
        return False
    if len(args) > 1 and os.path.basename(args[1]) == "jupyter-server":
        return args[2:3] == ["stop"]
    # python [one interpreter flag] -m jupyter_server stop
    return any(args[i:i + 3] == ["-m", "jupyter_server", "stop"] for i in (1, 2))


def parse_proc_net_address(text: str) -> tuple[str, int]:
    """``0100007F:1F90`` (``/proc/net/tcp``) or the 32-hex-digit IPv6 form (``/proc/net/tcp6``)
    as ``(address, port)``: each 32-bit word of the address is printed in host byte order."""
    hexaddr, hexport = text.split(":")
    words = [hexaddr[i : i + 8] for i in range(0, len(hexaddr), 8)]
    raw = b"".join(struct.pack("=I", int(word, 16)) for word in words)
    family = socket.AF_INET if len(raw) == 4 else socket.AF_INET6
    return socket.inet_ntop(family, raw), int(hexport, 16)


def _same(a: tuple[str, int], b: tuple[str, int]) -> bool:
    try:
        addr_a, addr_b = ipaddress.ip_address(a[0]), ipaddress.ip_address(b[0])
    except ValueError:
        return False
    # an IPv4 client on a dual-stack listener shows as ::ffff:127.0.0.1 on one side only
    if isinstance(addr_a, ipaddress.IPv6Address) and addr_a.ipv4_mapped is not None:
        addr_a = addr_a.ipv4_mapped
    if isinstance(addr_b, ipaddress.IPv6Address) and addr_b.ipv4_mapped is not None:
        addr_b = addr_b.ipv4_mapped
    return addr_a == addr_b and a[1] == b[1]


def _tcp_socket_owner(peer: tuple[str, int], local: tuple[str, int]) -> tuple[int, int] | None:
    """``(uid, inode)`` of the socket whose local end is ``peer`` and remote end ``local``
    (the client's half of our connection), from ``/proc/net/tcp`` and ``tcp6``."""
    for table in ("tcp", "tcp6"):
        try:
            lines = (_PROC / "net" / table).read_text(encoding="ascii").splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10:
                continue
            try:
                theirs = parse_proc_net_address(fields[1])
                ours = parse_proc_net_address(fields[2])
            except (ValueError, struct.error, OSError):
                continue
            if _same(theirs, peer) and _same(ours, local):
                return int(fields[7]), int(fields[9])
    return None


def _pid_holding(inode: int, uid: int) -> int | None:
    """The pid of a process of ``uid`` with ``socket:[inode]`` among its open files."""
    target = f"socket:[{inode}]"
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid != uid:
                continue
            for fd in (entry / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) == target:
                        return int(entry.name)
        except OSError:
            continue
    return None


def _describe_pid(pid: int, uid: int) -> PeerProcess | None:
    base = _PROC / str(pid)
    try:
        with open(base / "cmdline", "rb") as handle:
            raw = handle.read(_MAX_CMDLINE + 1)
        ns_theirs = os.readlink(base / "ns" / "pid")
        ns_ours = os.readlink(_PROC / "self" / "ns" / "pid")
    except OSError:
        return None
    if len(raw) > _MAX_CMDLINE:
        return None
    argv = tuple(part.decode("utf-8", "replace") for part in raw.split(b"\0") if part)
    return PeerProcess(pid=pid, uid=uid, argv=argv, same_pid_namespace=ns_theirs == ns_ours)


def peer_process(sock: socket.socket) -> PeerProcess | None:
    """The process at the other end of ``sock``: through ``SO_PEERCRED`` on a Unix socket; on
    loopback TCP, the client's socket in ``/proc/net/tcp*`` and the process holding it. ``None``
    for anything else (a remote peer, no ``/proc``, the process gone)."""
    try:
        if sock.family == socket.AF_UNIX:
            if not hasattr(socket, "SO_PEERCRED"):
                return None
            pid, uid, _gid = _UCRED.unpack(
                sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
            )
            return _describe_pid(pid, uid) if pid > 0 else None
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return None
        peer = sock.getpeername()[:2]
        local = sock.getsockname()[:2]
    except OSError:
        return None
    try:
        address = ipaddress.ip_address(peer[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if not address.is_loopback:
        return None
    found = _tcp_socket_owner((str(peer[0]), int(peer[1])), (str(local[0]), int(local[1])))
    if found is None:
        return None
    uid, inode = found
    if uid != os.getuid():  # only our own user's processes are looked for (and may be read)
        return PeerProcess(pid=0, uid=uid, argv=(), same_pid_namespace=False)
    pid = _pid_holding(inode, uid)
    return _describe_pid(pid, uid) if pid is not None else None


def may_stop_this_server(peer: PeerProcess | None) -> tuple[bool, str]:
    """Whether ``peer`` may stop this server as ``SIGTERM`` could, and why (for the log and
    the record)."""
    if peer is None:
        return False, "the process at the other end is not known (not a local connection)"
    if peer.uid != os.getuid():
        return False, f"the process at the other end runs as uid {peer.uid}, not this server's"
    if peer.pid == os.getpid():
        return False, "the request comes from this server's own process (a proxy in it)"
    if not peer.same_pid_namespace:
        return False, "the process at the other end is in another PID namespace"
    if not is_stock_stop_command(peer.argv):
        return False, "the process at the other end is not `jupyter server stop`"
    return True, "the process at the other end is `jupyter server stop`, run by this user"
