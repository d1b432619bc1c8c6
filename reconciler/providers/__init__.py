"""The registry of providers. Only the CLI imports this package; the engine is handed
the kinds it needs, so it never imports a provider."""
from __future__ import annotations

import importlib

# provider name -> module that defines PROVIDER
_PROVIDER_MODULES = {
    "valdi": "reconciler.providers.valdi",
    "valohai": "reconciler.providers.valohai",
    "codeocean": "reconciler.providers.codeocean",
}


def load_providers() -> dict:
    """name -> Provider, for every provider whose module is present."""
    providers = {}
    for name, module in _PROVIDER_MODULES.items():
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:  # a provider not yet written
            if e.name and e.name.startswith(module):
                continue
            raise
        if hasattr(mod, "PROVIDER"):
            providers[name] = mod.PROVIDER
    return providers
