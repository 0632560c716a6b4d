"""auditproxy: a recording reverse proxy that audits live REST API traffic.

The pure, sans-I/O API lives in :mod:`auditproxy.core`; the aiohttp shells
(proxy, admin server, sinks) and the command line are thin wrappers around it.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("auditproxy")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = ["__version__"]
