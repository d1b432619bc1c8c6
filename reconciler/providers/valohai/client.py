"""The Valohai API client: paged listings (cached for one run), adoption, property writes.

Reads are few and large: the project's datums, its aliases and the stores are each read
through one paged listing and cached until the next write, so observe, check and the
batch writes of one run share them. Writes are batch endpoints where Valohai has them.
"""
from __future__ import annotations

import os
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import msgspec

from reconciler.errors import ApiError, AuthError, NotFound
from reconciler.providers.http import HttpApi
from reconciler.providers.runcache import RunCache

DEFAULT_HOST = "https://app.valohai.com"
PAGE_SIZE = 1000  # per listing request; valohai-cli itself asks for up to 9000
DATUM_PAGE_SIZE = 5000  # what `vh execution outputs` asks of /api/v0/data/
# what the kinds read of a listed datum (common.py, datum.py, properties.py)
DATUM_FIELDS = frozenset({"id", "uri", "name", "sha256", "size", "store", "metadata", "tags", "purged"})
WRITE_CHUNK = 1000  # datums per metadata/apply call (what Valohai's own scripts use)
ADOPT_CHUNK = 500  # URLs per bulk adopt call
CONCURRENCY = 8  # single adopts at once, when the server has no bulk form
# pages of a listing read at once: each page in flight is ~18 MB of JSON (5,000 datums) decoded
# beside the others, and a no-op plan over 100,000 datums peaked ~6 MiB higher per page at once
PAGES_AT_ONCE = 4
ADOPT_REFUSED = (400, 409)  # how a refused adopt may be answered ("already exists": 400, or a 409 conflict)
# how "this URL is a datum already" may be worded (Valohai's words are not documented)
ALREADY = re.compile(r"already|exists|duplicate|conflict", re.IGNORECASE)


@dataclass
class AdoptOutcome:
    """What adoption did with each URL."""

    created: dict[str, str] = field(default_factory=dict)  # url -> new datum id
    existing: set[str] = field(default_factory=set)  # already a datum: take it over
    failed: dict[str, str] = field(default_factory=dict)  # url -> the server's message


class ValohaiClient:
    def __init__(self, host: str, token: str | None, project: str | None, *,
                 http: HttpApi | None = None, page_size: int | None = None):
        self.host = host.rstrip("/")
        self._token_given = bool(token)
        self._project = project
        self.page_size = page_size
        self.http = http or HttpApi("valohai", self.host, headers={
            "Authorization": f"Token {token or ''}", "Accept": "application/json",
            "User-Agent": "reconciler"})
        self._cache = RunCache()
        self.alias_kept: set[str] = set()  # datums whose `valohai.alias: null` the server refused
        self._bulk_adopt = True  # until the server refuses the `urls` form (seed 000 documents `url` only)

    def close(self) -> None:
        self.http.close()

    # -- identity -------------------------------------------------------------------------
    def _need_token(self) -> None:
        if not self._token_given:
            raise AuthError("no API token: set providers.valohai.token or VALOHAI_TOKEN", api="valohai")

    @property
    def project(self) -> str:
        """The project id; a project given by name is looked up once."""
        return self._cache.get("project", self._resolve_project)

    def _resolve_project(self) -> str:
        if not self._project:
            raise ApiError("no project: set providers.valohai.project or VALOHAI_PROJECT "
                           "(a project id or name)", api="valohai")
        try:
            return str(uuid.UUID(self._project))
        except ValueError:
            pass
        names = {p["name"]: p["id"] for p in self._pages("/api/v0/projects/", {})}
        if self._project not in names:
            raise ApiError(f"no project named {self._project!r} is visible with this token", api="valohai")
        return names[self._project]

    # -- reads ----------------------------------------------------------------------------
    def _pages(self, path: str, params: dict, *, until: Callable[[list], bool] | None = None,
               keep: frozenset[str] | None = None, page_size: int | None = None,
               decode: Callable[[bytes], Any] | None = None) -> list[dict]:
        """Every item of a DRF listing, paged by offset (as valohai-cli pages). Once the
        first page gives the count, the other pages are read concurrently (bounded; each
        request still honours 429 / Retry-After). `keep`: the only fields kept of each item."""
        self._need_token()
        items: list[dict] = []
        shared: dict = {}  # equal small objects (every datum's {"id", "name"} store) kept once
        offset = 0
        size = self.page_size or page_size or PAGE_SIZE  # a page size set on the client wins

        def page(at: int) -> tuple[list[dict], Any]:
            body = self.http.request("GET", path, params={**params, "limit": size, "offset": at}, decode=decode)
            results: Any
            if isinstance(body, _Slim):  # already only the kept fields
                return body.results, {"count": body.count, "next": body.next}
            if isinstance(body, list):  # a bare list, not a DRF page: everything at once
                results, body = body, None
            else:
                results = body.get("results") if isinstance(body, dict) else None
                if not isinstance(results, list):
                    raise ApiError(f"expected a page {{count, next, results: [...]}} or a list, got "
                                   f"{_shape(body)}", api="valohai", endpoint=f"GET {path}")
            if keep is not None:
                results = [_slim(r, keep, shared) if isinstance(r, dict) else r for r in results]
            return results, body

        while True:
            results, body = page(offset)
            if body is None:
                return results
            items.extend(results)
            offset += len(results)
            if len(results) < size or not body.get("next") or (until and until(items)):
                return items
            count = body.get("count")
            if until is None and isinstance(count, int) and count > offset:
                with ThreadPoolExecutor(max_workers=PAGES_AT_ONCE) as pool:
                    pages = list(pool.map(page, range(offset, count, size)))
                for results, body in pages:
                    items.extend(results)
                    offset += len(results)
                if not pages or len(pages[-1][0]) < size or not (pages[-1][1] or {}).get("next"):
                    return items  # else the listing grew while we read it: go on one by one

    def invalidate(self) -> None:
        self._cache.clear(keep=("project",))

    def release(self) -> None:
        """Forget the datum listing once the live records are built from it, for a plan that is
        only shown (at 100,000 datums: tens of MiB); a later read lists again."""
        self._cache.drop("datums")

    def datums(self) -> list[dict]:
        """Every datum of the project (one paged listing per run, until a write), with only
        the fields the kinds read (a listed datum is ~3.6 KB; 100,000 of them add up)."""
        return self._cache.get("datums", lambda: self._pages(
            "/api/v0/data/", {"project": self.project, "deleted": "false"},
            keep=DATUM_FIELDS, page_size=DATUM_PAGE_SIZE, decode=decode_datum_page))

    def aliases(self) -> list[dict]:
        return self._cache.get("aliases", lambda: self._pages(
            "/api/v0/datum-aliases/", {"project": self.project, "deleted": "false"}))

    def stores(self) -> list[dict]:
        return self._cache.get("stores", lambda: self._pages("/api/v0/stores/", {}))

    def find_store(self, name_or_id: str) -> dict | None:
        stores = self.stores()
        return next((s for s in stores if s["id"] == name_or_id), None) or \
            next((s for s in stores if s["name"] == name_or_id), None)

    def newest_datums(self, ids: set[str], uris: set[str]) -> list[dict]:
        """Datums read newest first, until every id and every URI asked for is seen: just
        adopted datums sit on the first page, so this is usually one request."""
        def enough(items: list) -> bool:
            seen_ids = {d["id"] for d in items}
            seen_uris = {d.get("uri") for d in items}
            return ids <= seen_ids and uris <= seen_uris
        return self._pages("/api/v0/data/", {"project": self.project, "ordering": "-ctime",
                                             "deleted": "false"}, until=enough,
                           keep=DATUM_FIELDS, page_size=DATUM_PAGE_SIZE, decode=decode_datum_page)

    def get_datum(self, datum_id: str) -> dict:
        self._need_token()
        return self.http.request("GET", f"/api/v0/data/{datum_id}/")

    # -- writes ---------------------------------------------------------------------------
    def adopt(self, store: dict, urls: list[str]) -> AdoptOutcome:
        """Adopt URLs into the project: one URL in the documented `url` form; many in the
        bulk form (`urls`) in chunks, or concurrent single adopts once the server refuses
        the bulk form (remembered for the run). Safe to retry: a URL
        adopted by an earlier attempt comes back as `existing`."""
        self._need_token()
        out = AdoptOutcome()
        try:
            if len(urls) == 1 or not self._bulk_adopt:
                raise _NoBulkForm()  # the documented form
            for i in range(0, len(urls), ADOPT_CHUNK):
                self._adopt_bulk(store, urls[i:i + ADOPT_CHUNK], out)
        except _NoBulkForm:
            self._bulk_adopt = self._bulk_adopt and len(urls) == 1
            self._adopt_singly(store, [u for u in urls if u not in out.created
                                       and u not in out.existing and u not in out.failed], out)
        finally:
            self.invalidate()
        return out

    def _adopt_bulk(self, store: dict, chunk: list[str], out: AdoptOutcome) -> None:
        while chunk:
            try:
                body = self.http.request("POST", f"/api/v0/stores/{store['id']}/adopt/",
                                         json={"urls": chunk, "project": self.project}, idempotent=True)
            except ApiError as e:
                errors = _url_errors(e, chunk) if e.status in ADOPT_REFUSED else None
                if errors is None:
                    if e.status == 400:
                        raise _NoBulkForm() from None
                    raise
                for url, (exists, message) in errors.items():
                    if exists:
                        out.existing.add(url)
                    else:
                        out.failed[url] = message
                chunk = [u for u in chunk if u not in errors]  # all or nothing: retry the rest
                continue
            out.created.update((body or {}).get("created") or {})
            return

    def _adopt_singly(self, store: dict, urls: list[str], out: AdoptOutcome) -> None:
        def one(url: str):
            try:
                body = self.http.request("POST", f"/api/v0/stores/{store['id']}/adopt/",
                                         json={"url": url, "project": self.project}, idempotent=True)
                return url, "created", ((body or {}).get("created") or {}).get(url)
            except ApiError as e:
                errors = _url_errors(e, [url]) if e.status in ADOPT_REFUSED else None
                if not errors:
                    return url, "failed", str(e)
                exists, message = errors[url]
                return url, ("existing" if exists else "failed"), message

        with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
            for url, what, value in pool.map(one, urls):
                if what == "created" and value:
                    out.created[url] = value
                elif what == "existing" or what == "created":
                    out.existing.add(url)  # created without an id in the answer: look it up
                else:
                    out.failed[url] = value

    def apply_metadata(self, per_datum: dict[str, dict]) -> dict[str, Exception]:
        """Properties for many datums: apply-all when they are identical, else one
        metadata/apply per chunk. Returns the failures by datum id.

        Valohai documents neither the answer nor what a bad datum does to a batch, so:
        an answer that lists `updated` ids makes the others failures; a 400 that names
        some datums of the chunk fails those and retries the rest once; a 400 to
        `valohai.alias: null` (some servers refuse it) retries without it, and the
        datums whose alias stayed are in `alias_kept`."""
        self._need_token()
        failures: dict[str, Exception] = {}
        ids = list(per_datum)
        try:
            for i in range(0, len(ids), WRITE_CHUNK):
                self._apply_chunk({d: per_datum[d] for d in ids[i:i + WRITE_CHUNK]}, failures, retries=2)
        finally:
            self.invalidate()
        return failures

    def _apply_chunk(self, bodies: dict[str, dict], failures: dict[str, Exception], retries: int) -> None:
        if not bodies:
            return
        chunk = list(bodies)
        first = bodies[chunk[0]]
        try:
            if len(chunk) > 1 and all(bodies[d] == first for d in chunk):
                answer = self.http.request("POST", "/api/v0/data/metadata/apply-all/",
                                           json={"metadata": first, "datum_ids": chunk}, idempotent=True)
            else:
                answer = self.http.request("POST", "/api/v0/data/metadata/apply/",
                                           json={"datum_metadata": bodies}, idempotent=True)
        except ApiError as error:
            e = _gone(error)
            if e.status != 400 or retries <= 0:
                failures.update((d, e) for d in chunk)
                return
            named = [d for d in chunk if d in str(e) or d in str(e.body)]
            unaliased = {d: {k: v for k, v in b.items() if not (k == ALIAS and v is None)} for d, b in bodies.items()}
            if unaliased != bodies and "alias" in f"{e} {e.body}".lower():  # some servers refuse alias: null
                self.alias_kept |= {d for d, b in bodies.items() if ALIAS in b and b[ALIAS] is None}
                self._apply_chunk({d: b for d, b in unaliased.items() if b}, failures, retries - 1)
            elif 0 < len(named) < len(chunk):  # all or nothing: these failed, the rest did not run
                failures.update((d, e) for d in named)
                self._apply_chunk({d: b for d, b in bodies.items() if d not in named}, failures, retries - 1)
            else:
                failures.update((d, e) for d in chunk)
            return
        updated = answer.get("updated") if isinstance(answer, dict) else None
        if isinstance(updated, list):  # per datum: the ones not listed were not written
            errors = {str(x.get("datum")): x.get("message") for x in answer.get("errors") or []
                      if isinstance(x, dict)}
            for d in chunk:
                if d not in updated:
                    failures[d] = ApiError(f"Valohai did not update datum {d}: {errors.get(d) or 'not in its answer'}",
                                           api="valohai", endpoint="POST /api/v0/data/metadata/apply/")

    def purge(self, datum_id: str) -> None:
        self._need_token()
        try:
            self.http.request("POST", f"/api/v0/data/{datum_id}/purge/", idempotent=True)
        except ApiError as e:
            if e.status != 404:  # already gone is success
                raise
        finally:
            self.invalidate()


ALIAS = "valohai.alias"


def _gone(error: ApiError) -> ApiError:
    """Valohai answers a write to a datum that no longer exists with a 400 that says so:
    from here on it is a NotFound (same message), so callers decide by type, not text."""
    if error.status != 400 or isinstance(error, NotFound) or "not found" not in str(error).lower():
        return error
    gone = NotFound(str(error))
    gone.api, gone.endpoint, gone.status, gone.body = error.api, error.endpoint, error.status, error.body
    gone.in_doubt = error.in_doubt
    return gone


def _shape(body: Any) -> str:
    if isinstance(body, dict):
        return "an object with keys " + ", ".join(sorted(body)[:6])
    return type(body).__name__


# -- listings decoded straight into the fields the kinds read ------------------------------------
# msgspec skips every other field of a listed datum in C, never building it (jsonlib built
# all ~20 fields of each, ~3.6 KB, then _slim dropped most). The values stay as the server
# sent them (Any): a shape the kinds handle (tags as objects, metadata of any form) is kept.
class _ListedDatum(msgspec.Struct, gc=False):  # DATUM_FIELDS, each as the server sent it
    id: Any = msgspec.UNSET
    metadata: Any = msgspec.UNSET
    name: Any = msgspec.UNSET
    purged: Any = msgspec.UNSET
    sha256: Any = msgspec.UNSET
    size: Any = msgspec.UNSET
    store: Any = msgspec.UNSET
    tags: Any = msgspec.UNSET
    uri: Any = msgspec.UNSET


class _DatumPage(msgspec.Struct):
    results: list[_ListedDatum]
    count: Any = None
    next: Any = None


_datum_page = msgspec.json.Decoder(_DatumPage)
DATUM_ORDER = _ListedDatum.__struct_fields__
assert frozenset(DATUM_ORDER) == DATUM_FIELDS, "a field the kinds read is missing from _ListedDatum"


@dataclass
class _Slim:
    """A DRF page whose items hold only the kept fields."""

    results: list[dict]
    count: Any
    next: Any


def decode_datum_page(raw: bytes) -> _Slim:
    """A page of /api/v0/data/ as dicts of DATUM_FIELDS (the fields the item has); a
    ValueError for anything else (the generic reading then reports it)."""
    try:
        page = _datum_page.decode(raw)
    except msgspec.MsgspecError as e:
        raise ValueError(str(e)) from None
    shared: dict = {}
    results = []
    for item in page.results:
        out = {}
        for k in DATUM_ORDER:
            v = getattr(item, k)
            if v is msgspec.UNSET:
                continue
            if isinstance(v, dict) and 0 < len(v) <= 4 and all(isinstance(x, (str, int, type(None)))
                                                                 for x in v.values()):
                v = shared.setdefault(tuple(v.items()), v)  # read-only: the kinds never edit a listing
            out[k] = v
        results.append(out)
    return _Slim(results, page.count, page.next)


def _slim(item: dict, keep: frozenset[str], shared: dict) -> dict:
    out = {}
    for k, v in item.items():
        if k not in keep:
            continue
        if isinstance(v, dict) and 0 < len(v) <= 4 and all(isinstance(x, (str, int, type(None))) for x in v.values()):
            v = shared.setdefault(tuple(v.items()), v)  # read-only: the kinds never edit a listing
        out[k] = v
    return out


class _NoBulkForm(Exception):
    """The server answered the `urls` form with an error that names no URL."""


def _url_errors(error: ApiError, urls: list[str]) -> dict[str, tuple[bool, str]] | None:
    """url -> (already exists?, message), read from an adopt error; None if the body
    says nothing about particular URLs."""
    found: dict[str, tuple[bool, str]] = {}
    for item in _error_objects(error.body):
        message = str(item.get("message") or "")
        url = item.get("url") if item.get("url") in urls else None
        exists = (error.status == 409 or bool(ALREADY.search(message))) and \
            item.get("code") in (None, "already_exists", "conflict", "duplicate")
        if url is None and len(urls) == 1 and (exists or item.get("code") == "adoptable_file_not_found"
                                               or urls[0] in message):
            url = urls[0]
        if url is None:
            url = next((u for u in urls if u in message), None)
        if url is None:
            continue
        found[url] = (exists, message)
    return found or None


def _error_objects(body: Any) -> Iterable[dict]:
    """Every {message, code} object at any depth (as valohai-cli's find_error looks)."""
    if isinstance(body, dict):
        if "message" in body:
            yield body
        else:
            for value in body.values():
                yield from _error_objects(value)
    elif isinstance(body, list):
        for item in body:
            yield from _error_objects(item)


def connect(config: dict[str, Any], env: Mapping[str, str] | None = None) -> ValohaiClient:
    """A client from the manifest's `providers.valohai` block; missing fields fall back to
    VALOHAI_HOST, VALOHAI_TOKEN and VALOHAI_PROJECT. Makes no request."""
    env = os.environ if env is None else env
    host = config.get("host") or env.get("VALOHAI_HOST") or DEFAULT_HOST
    return ValohaiClient(str(host), config.get("token") or env.get("VALOHAI_TOKEN"),
                         config.get("project") or env.get("VALOHAI_PROJECT"))
