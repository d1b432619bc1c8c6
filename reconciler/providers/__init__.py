"""The registry of providers. Only the CLI imports this package; the engine is handed
the kinds it needs, so it never imports a provider."""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:
    from reconciler.providers.contract import Provider

# provider name -> module that defines PROVIDER
_PROVIDER_MODULES = {
    "valdi": "reconciler.providers.valdi",
    "valohai": "reconciler.providers.valohai",
    "codeocean": "reconciler.providers.codeocean",
}


def load_providers(names: Iterable[str] | None = None) -> dict[str, Provider]:
    """name -> Provider, for every provider; only those in `names`
    when given (a plan over one API imports one provider: start-up is mostly imports).
    A name no provider has loads them all, so "unknown kind" can list every known kind."""
    if names is not None and not set(names) <= set(_PROVIDER_MODULES):
        names = None
    providers = {}
    for name, module in _PROVIDER_MODULES.items():
        if names is not None and name not in names:
            continue
        providers[name] = importlib.import_module(module).PROVIDER
    return providers
