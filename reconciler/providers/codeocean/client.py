"""The Code Ocean API (v1) client: our data assets read through search, the writes one
call each. Basic auth with the token as the user name and an empty password.

Reads are few: the assets we created are listed with POST data_assets/search
(limit 1000, next_token paging), once for live and once for archived ones (search
hides archived assets unless asked, and the DataAsset object does not say whether it is
archived). The listing and the custom-metadata schema are cached for the run and the
listing is dropped after a write.
"""
from __future__ import annotations

import os
from typing import Any, Mapping

import httpx

from reconciler.errors import ApiError, AuthError, NotFound
from reconciler.providers.http import HttpApi
from reconciler.providers.runcache import RunCache
from reconciler.providers.shared import listed

PAGE_SIZE = 1000  # the API's maximum page


class CodeOceanClient:
    def __init__(self, domain: str, token: str | None, *, http: HttpApi | None = None,
                 page_size: int = PAGE_SIZE, asset_timeout: float = 1800.0):
        self.domain = domain.rstrip("/")
        self.asset_timeout = asset_timeout  # seconds apply waits for draft -> ready
        self._token_given = bool(token)
        self.page_size = page_size
        self.http = http or HttpApi("codeocean", f"{self.domain}/api/v1", auth=httpx.BasicAuth(token or "", ""),
                                    headers={"Accept": "application/json", "User-Agent": "reconciler"})
        self._cache = RunCache()

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, path: str, **kw) -> Any:
        if not self._token_given:
            raise AuthError("no API token: set providers.codeocean.token or CODEOCEAN_TOKEN", api="codeocean")
        return self.http.request(method, path, **kw)

    def invalidate(self) -> None:
        self._cache.drop("assets", "visible")

    # -- reads ------------------------------------------------------------------------------
    def search(self, **params: Any) -> list[dict]:
        """Every result of a search, following next_token."""
        body = {"limit": self.page_size, "offset": 0, **params}
        items: list[dict] = []
        while True:
            page = self._call("POST", "/data_assets/search", json=body, idempotent=True)
            # results is required (seed 003): a page without it is unreadable, not empty
            items.extend(listed(page, "results", "codeocean", "POST /api/v1/data_assets/search"))
            token = page.get("next_token") if isinstance(page, dict) else None
            if not isinstance(page, dict) or not page.get("has_more") or not token:
                return items
            body = {**body, "next_token": token}

    def owned_assets(self) -> dict[str, tuple[dict, bool]]:
        """id -> (asset, archived) for every asset this token created."""
        def load() -> dict[str, tuple[dict, bool]]:
            found: dict[str, tuple[dict, bool]] = {}
            for archived in (False, True):
                for asset in self.search(ownership="created", archived=archived):
                    found[asset["id"]] = (asset, archived)
            return found
        return self._cache.get("assets", load)

    def visible_assets(self) -> list[dict]:
        """Every asset the token can see, shared ones too (one search for the run, however
        many lookups fall back to it)."""
        return self._cache.get("visible", self.search)

    def get(self, asset_id: str) -> dict | None:
        try:
            body = self._call("GET", f"/data_assets/{asset_id}")
        except NotFound:
            return None
        if not isinstance(body, dict):  # an HTML page, an empty body: unreadable, never "gone"
            raise ApiError(f"unreadable answer: expected a data asset object, got {type(body).__name__}",
                           api="codeocean", endpoint="GET /api/v1/data_assets/{id}")
        return body

    def permissions(self, asset_id: str) -> dict:
        return self._call("GET", f"/data_assets/{asset_id}/permissions") or {}

    def metadata_schema(self) -> dict:
        """The deployment's custom metadata fields: {fields: [...], categories: [...]}."""
        return self._cache.get("schema", lambda: self._call("GET", "/custom_metadata") or {})

    # -- writes -----------------------------------------------------------------------------
    def create(self, body: dict) -> dict:
        try:
            return self._call("POST", "/data_assets", json=body)
        finally:
            self.invalidate()

    def update(self, asset_id: str, body: dict) -> dict:
        try:  # PUT replaces the metadata: safe to repeat
            return self._call("PUT", f"/data_assets/{asset_id}", json=body)
        finally:
            self.invalidate()

    def archive(self, asset_id: str, archived: bool) -> None:
        self._call("PATCH", f"/data_assets/{asset_id}/archive", params={"archive": str(archived).lower()},
                   idempotent=True)
        self.invalidate()

    def set_permissions(self, asset_id: str, body: dict) -> None:
        self._call("POST", f"/data_assets/{asset_id}/permissions", json=body, idempotent=True)

    def transfer(self, asset_id: str, target: dict, force: bool = False) -> None:
        aws = target.get("aws") if isinstance(target.get("aws"), dict) else None
        if aws is not None:  # seed 003 requires target.aws.prefix: "" is the bucket's root
            target = {**target, "aws": {"prefix": "", **aws}}
        self._call("POST", f"/data_assets/{asset_id}/transfer", json={"target": target, "force": force})
        self.invalidate()

    def delete(self, asset_id: str) -> None:
        """Deleting what is already gone succeeds."""
        try:
            self._call("DELETE", f"/data_assets/{asset_id}", idempotent=True)
        except NotFound:
            pass
        finally:
            self.invalidate()


def connect(config: dict[str, Any], env: Mapping[str, str] | None = None) -> CodeOceanClient:
    """A client from the manifest's `providers.codeocean` block; missing fields fall back
    to CODEOCEAN_DOMAIN and CODEOCEAN_TOKEN. Makes no request."""
    env = os.environ if env is None else env  # read-only: a Mapping
    domain = config.get("domain") or env.get("CODEOCEAN_DOMAIN")
    if not domain:
        raise ApiError("no Code Ocean domain: set providers.codeocean.domain or CODEOCEAN_DOMAIN "
                       "(e.g. https://acme.codeocean.com)", api="codeocean")
    if "://" not in str(domain):
        domain = f"https://{domain}"
    return CodeOceanClient(str(domain), config.get("token") or env.get("CODEOCEAN_TOKEN"),
                           asset_timeout=float(config.get("asset_timeout") or 1800.0))
