"""The lean HTTP/1.1 data path under the two seams of ``auditproxy.wire``.

- ``server``: an ``asyncio.Protocol`` per client connection over llhttp
  (``httptools``), calling the traffic handler once per request, in order;
- ``client``: the ``Upstream`` with a keep-alive pool of its own per upstream
  authority, over the same parser in response mode;
- ``cycle``: one request and its reply on a client connection;
- ``methods``: extension methods on llhttp's fixed method list;
- ``flow``, ``framing``: write-side flow control and what both sides write
  (status lines, head bytes, ``Date``).
"""
