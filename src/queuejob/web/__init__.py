"""``queuejob web``: the dashboard (pages, actions) and the Prometheus endpoint.

``create_app(db)`` is the ASGI application; ``serve`` runs it with uvicorn after the
checks of ``security`` (loopback unless credentials are set).
"""

from .app import create_app
from .server import serve

__all__ = ["create_app", "serve"]
