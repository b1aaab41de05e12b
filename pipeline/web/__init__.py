"""The HTTP surface: ``/healthz``, ``/metrics`` and a dashboard, read-only, on aiohttp.web.

``pipeline serve`` runs it on its own; the daemon runs it beside the scheduler when ``web.enabled``. Layout:
:mod:`.app` (the application, its middlewares, listening), :mod:`.database` (the read-only engine),
:mod:`.health`, :mod:`.metrics`, :mod:`.dashboard` (the pages), :mod:`.queries` (their reads),
:mod:`.charts` (server-rendered SVG) and :mod:`.grades` (the Korean grade bands).
"""
