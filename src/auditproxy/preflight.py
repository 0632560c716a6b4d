"""Checks ``serve`` runs before it starts anything, so a start that cannot work fails
at once with exit 2 and a line naming the cause, instead of serving half-working.

- ``--record DIR`` (``record.dir``) must be a directory this process can create
  files in; later write failures stay counted faults of the running recorder.
- ``--listen`` and ``--admin`` must be free to bind (a port 0 is always free).
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import tempfile

from auditproxy.core.errors import ConfigError
from auditproxy.settings import HostPort, Settings


def check_start(settings: Settings, flags: dict[str, object] | None = None) -> None:
    """Raise ConfigError when the recording folder or an address cannot be used."""
    flags = flags or {}
    source = settings.config_file or "<config>"
    if settings.record.enabled:
        key, where = ("--record", "<flags>") if flags.get("record.dir") else ("record.dir", source)
        check_writable_dir(settings.record.dir, where, key)
    for key, address in (("listen", settings.listen), ("admin", settings.admin)):
        where = "<flags>" if flags.get(key) else source
        check_bindable(address, where, f"--{key}" if flags.get(key) else key)


def check_writable_dir(path: str, source: str, key: str) -> None:
    """``path`` exists or can be made, and a file can be created in it."""
    try:
        os.makedirs(path, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".auditproxy-probe-", dir=path)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError(source, key, f"cannot write recordings to {path}: {reason}") from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.remove(probe)


def check_bindable(address: HostPort, source: str, key: str) -> None:
    """A TCP socket can be bound to ``address`` (as the server will bind it)."""
    if address.port == 0:
        return
    host = address.host or None
    try:
        infos = socket.getaddrinfo(
            host, address.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise ConfigError(source, key, f"{address}: cannot resolve host: {exc}") from None
    for family, kind, proto, _, sockaddr in infos:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(sockaddr)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    what = f"cannot listen on {address}: port {address.port} is already in use"
                else:
                    what = f"cannot listen on {address}: {exc.strerror or exc}"
                raise ConfigError(source, key, what) from None
