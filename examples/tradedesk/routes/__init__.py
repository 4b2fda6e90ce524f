"""One router per resource; ``ALL`` is what the app mounts."""

from examples.tradedesk.routes import availabilities, matches, partners, requirements

ALL = (partners.router, availabilities.router, requirements.router, matches.router)
