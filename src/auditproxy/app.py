"""The admin application (aiohttp): ``/metrics`` and the ops endpoints, with the
serving process's context under :data:`CTX`. The traffic port is served by
``auditproxy.traffic`` (the ``http1`` data path)."""

from __future__ import annotations

from aiohttp import web

from auditproxy.runtime import ProxyContext

CTX = web.AppKey("auditproxy_ctx", ProxyContext)


def make_admin_app(ctx: ProxyContext) -> web.Application:
    from auditproxy.admin import setup_admin_routes

    app = web.Application()
    app[CTX] = ctx
    setup_admin_routes(app, ctx)
    return app
