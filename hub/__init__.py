"""ChittyChat Hub's pure domain: ids, clocks, CRDTs, models, protocol, entities, storage.

Nothing in this package imports Ray, aiohttp or asyncio, so every rule here is testable in
milliseconds and runs unchanged inside any actor.
"""

__version__ = "0.1.0"
