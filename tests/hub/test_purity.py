"""hub/ is the pure domain: importing all of it loads no Ray, no aiohttp and no asyncio."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import importlib, pkgutil, sys
import hub
for module in pkgutil.walk_packages(hub.__path__, "hub."):
    importlib.import_module(module.name)
print(sorted(m for m in ("ray", "aiohttp", "asyncio") if m in sys.modules))
"""


def test_no_module_of_hub_pulls_in_ray_aiohttp_or_asyncio() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
