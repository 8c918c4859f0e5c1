"""Keep nats-py from importing aiohttp, which it loads only for its websocket transport.

deskgate talks to nats-server over TCP, never websockets; but once ccxt is installed
(it needs aiohttp), `import nats` would load aiohttp in every process: about 0.25 s
and 10 MB each, for code none of them runs. While `nats.aio.transport` is first
imported, aiohttp reads as absent to it; a module that does need aiohttp (ccxt, in
the executor and the market-data feed) imports it normally afterwards.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys

_TARGET = "nats.aio.transport"


class _WithoutAiohttp(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname != _TARGET or "aiohttp" in sys.modules:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return None
        loader = spec.loader

        class _Loader(importlib.abc.Loader):
            def create_module(self, spec):
                return loader.create_module(spec)

            def exec_module(self, module):
                sys.modules["aiohttp"] = None  # ImportError inside nats-py's try: websockets unavailable
                try:
                    loader.exec_module(module)
                finally:
                    if sys.modules.get("aiohttp", 0) is None:
                        del sys.modules["aiohttp"]

        spec.loader = _Loader()
        return spec


def install() -> None:
    if _TARGET not in sys.modules and not any(isinstance(f, _WithoutAiohttp) for f in sys.meta_path):
        sys.meta_path.insert(0, _WithoutAiohttp())
