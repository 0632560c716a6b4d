"""The one exception the core raises on purpose."""

from __future__ import annotations


class ConfigError(Exception):
    """A configuration or profile value is wrong.

    ``source`` is the file (or ``"<env>"``/``"<flags>"``), ``where`` the key path
    (``timeouts.connect``, ``rules.ARP.03.LOCATION-201.severity``) and ``what``
    says what was found and what is expected. ``str()`` gives one line.
    """

    def __init__(self, source: str, where: str, what: str) -> None:
        super().__init__(f"{source}: {where}: {what}")
        self.source = source
        self.where = where
        self.what = what
