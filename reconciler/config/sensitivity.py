"""The one notion of "sensitive" for the whole tool.

A value is sensitive when
* its field has a secret's name (SECRET_NAMES: `password`, `token`, ...), or a name its
  kind lists in `Kind.sensitive` (`secret_access_key`, `client_secret`, ...); or
* it is derived from a secret: a spec field whose `${...}` reference (even inside a
  longer string) names a sensitive output of another resource, such as
  `description: "key=${valdi.volume.v.secret_access_key}"`. Like Terraform's sensitive
  marks, the taint follows the value wherever it goes: masked in every plan format, the
  plan file and `show`, sealed in the state (`ResourceState.sensitive_paths`).
* and transitively: an output of a resource that echoes a spec field of the same name
  (a data asset's `name`, a VM's `name`) is sensitive when that field is derived from a
  secret or filled from a sensitive variable, so whatever references it (another
  resource's field, a top-level output) is derived from a secret too (`Taint`).

Logs and error messages are redacted by key name (SECRET_PATTERN, which errs on the side
of hiding) and, for values that carry no telling key (a secret inside a description),
by value: every secret the run handles is registered here and replaced wherever a log
line or an API error would show it.
"""
from __future__ import annotations

import re
import secrets
import threading
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping

from reconciler.config import walk
from reconciler.config.model import Ref

if TYPE_CHECKING:  # typing only: the engine never imports a provider
    from reconciler.config.declared import DeclaredKind

# field names that are secrets in every kind (exact names, so "token_count" stays visible)
SECRET_NAMES = frozenset({"password", "token", "secret", "secret_access_key", "private_key", "api_key",
                          "client_secret", "access_key_id"})
# keys hidden in request logs, API error bodies and state show: any key that looks secret
SECRET_PATTERN = re.compile(
    r"(password|secret|token|private_key|access_key|authorization|signature|credential|api_key)", re.I)
MASK = "(sensitive)"


def secret_key(name: str) -> bool:
    """A JSON key whose value is hidden in logs and sealed in the state ("*_file" names a path)."""
    return bool(SECRET_PATTERN.search(name)) and not name.endswith("_file")


def field_names(kind: DeclaredKind | None) -> frozenset[str]:
    """The field and output names never shown for this kind."""
    return SECRET_NAMES | (frozenset(kind.sensitive) if kind is not None else frozenset())


def _kind_of(address: str, kinds: Mapping[str, DeclaredKind]) -> DeclaredKind | None:
    for name, kind in kinds.items():
        if address.startswith(name + "."):
            return kind
    return None


class Taint:
    """Which resource attributes are derived from a secret, followed through any number of
    references (secret -> B.name -> C.description -> an output). Asked on demand and
    remembered: only the fields that references actually name are ever looked at, so a
    plan with nothing sensitive does no work beyond the reference checks it already made."""

    def __init__(self, resources: Iterable[Any]) -> None:
        self._resources = resources
        self._by_address: dict[str, Any] | None = None
        self._known: dict[tuple[str, str], bool] = {}

    def __call__(self, address: str, attribute: str, kinds: Mapping[str, DeclaredKind]) -> bool:
        key = (address, attribute)
        if key in self._known:
            return self._known[key]
        self._known[key] = False  # a reference cycle is not a taint
        if self._by_address is None:
            self._by_address = {r.address: r for r in self._resources}
        resource = self._by_address.get(address)
        kind = kinds.get(resource.kind) if resource is not None else None
        found = False
        if resource is not None and kind is not None and attribute in kind.outputs:
            # the output echoes the spec field of its name: tainted when that field is
            if any(top_field(p) == attribute for p in resource.sensitive_paths):
                found = True
            elif isinstance(resource.spec, dict) and attribute in resource.spec:
                found = any(sensitive_ref(ref, kinds, self) for ref in walk.refs(resource.spec[attribute]))
        self._known[key] = found
        return found


def top_field(path: str) -> str:
    """The spec field a path starts in: "details.password" and "files[0].source" -> the first name."""
    return path.split(".", 1)[0].split("[", 1)[0]


def sensitive_ref(ref: Ref, kinds: Mapping[str, DeclaredKind], taint: Taint | None = None) -> bool:
    """A reference to a secret output, or (given the plan's Taint) to an output derived from one."""
    if ref.attribute in field_names(_kind_of(ref.address, kinds)):
        return True
    return taint is not None and taint(ref.address, ref.attribute, kinds)


def derived_paths(spec: Any, kinds: Mapping[str, DeclaredKind], prefix: str = "",
                  taint: Taint | None = None) -> Iterator[str]:
    """Spec field paths ("description", "properties.note", "files[0].path") whose value is
    built from a sensitive output of another resource (or, given a Taint, from an output
    derived from one, however many references away)."""
    # a Template's references share its path: each path once
    yield from dict.fromkeys(path for path, ref in walk.refs_at(spec, prefix) if sensitive_ref(ref, kinds, taint))


def hidden(path: str, names: Iterable[str], derived: Iterable[str] = (), values: Iterable[Any] = ()) -> bool:
    """THE rule every writer asks (plans, drift, refresh-only, the watch log, import):
    a field is shown masked when any segment of its path is a secret's name for its kind
    (`field_names`: SECRET_NAMES and the kind's own), when it is at, inside or above a
    path derived from a secret, or when one of its values holds a secret the run handles."""
    names = set(names)
    if any(seg in names for seg in re.split(r"[.\[\]]", path) if seg):
        return True
    return covers(derived, path) or any(holds_secret(v) for v in values)


def hidden_leaves(value: Any, names: Iterable[str], derived: Iterable[str] = ()) -> list[tuple[str, Any]]:
    """(path, value) of every leaf of a spec or live object that `hidden` hides: what a
    writer with no mask of its own (a generated manifest, a digest kept on disk, an error
    text quoting a value) must leave out."""
    names, derived = set(names), list(derived)
    return [(path, v) for path, v in walk.leaves(value) if path and hidden(path, names, derived, (v,))]


def covers(paths: Iterable[str], path: str) -> bool:
    """True when `path` is, holds or lies inside one of `paths` (dotted, [i] for items)."""
    for p in paths:
        if path == p or path.startswith((p + ".", p + "[")) or p.startswith((path + ".", path + "[")):
            return True
    return False


def mask_paths(value: Any, paths: Iterable[str], prefix: str = "") -> Any:
    """A copy of a spec with the values at `paths` replaced by MASK."""
    paths = list(paths)
    if prefix and prefix in paths:
        return MASK
    if isinstance(value, dict):
        return {k: mask_paths(v, paths, f"{prefix}.{k}" if prefix else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_paths(v, paths, f"{prefix}[{i}]") for i, v in enumerate(value)]
    return value


# -- credentials in provider settings -------------------------------------------------------
ADDRESS_FIELDS = ("endpoint", "host", "domain", "url")  # where a provider's server is named


def credentials(providers: Mapping[str, Mapping[str, Any]], env: Mapping[str, str],
                used: Iterable[str] = ()) -> dict[str, str]:
    """Every credential in use, by where it comes from ("providers.valdi.password",
    "VALDI_PASSWORD"): secret-named provider settings and the environment variables the
    providers (configured, or `used` by a resource) fall back to (NAME_... with a secret's name)."""
    out: dict[str, str] = {}
    for pname in sorted(set(providers) | set(used)):
        config = providers.get(pname) or {}
        for key, value in config.items():
            if secret_key(str(key)) and isinstance(value, str) and value:
                out[f"providers.{pname}.{key}"] = value
        prefix = pname.upper() + "_"
        for name, value in env.items():
            if name.startswith(prefix) and secret_key(name) and value:
                out[name] = value
    return out


def credential_in_address(address: str, found: Mapping[str, str]) -> str | None:
    """Where the credential inside a server address comes from, or None. A password in
    a host name is sent out as a DNS lookup and shown in every connection error."""
    from urllib.parse import urlsplit

    try:
        if urlsplit(address if "://" in address else f"https://{address}").password:
            return "the address's user:password@ part"
    except ValueError:
        pass
    for label, value in found.items():
        if len(value) >= 4 and value in address:
            return label
    return None


# -- values the run handles, hidden from logs and messages ---------------------------------
_values: set[str] = set()
_lock = threading.Lock()
MIN_LENGTH = 6  # shorter strings would blank out ordinary words


def register(value: Any, min_length: int = MIN_LENGTH) -> None:
    """Remember a secret value (or every string inside a mapping or list) so that no log
    line or error message shows it."""
    if isinstance(value, dict):
        for v in value.values():
            register(v, min_length)
    elif isinstance(value, list):
        for v in value:
            register(v, min_length)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):  # a sensitive size: 87654 GB
        register(str(value), min_length)
    elif isinstance(value, str) and len(value) >= min_length:
        with _lock:
            _values.add(value)
            for line in value.splitlines():  # a private key is logged line by line, if at all
                if len(line) >= 16:
                    _values.add(line)


def scrub(text: str) -> str:
    """`text` with every registered secret replaced."""
    if not _values or not isinstance(text, str):
        return text
    with _lock:
        found = [v for v in _values if v in text]
    for v in sorted(found, key=len, reverse=True):
        text = text.replace(v, "(redacted)")
    return text


def scrub_values(text: str, values: Iterable[Any]) -> str:
    """`text` with these values (the leaves `hidden_leaves` found) and every registered
    secret replaced: for a message that may quote a value, such as a library's error."""
    for v in sorted({str(v) for v in values if isinstance(v, (str, int, float)) and not isinstance(v, bool)},
                    key=len, reverse=True):
        if len(v) >= 4:  # shorter ones would blank out ordinary words
            text = text.replace(v, "(redacted)")
    return scrub(text)


def looks_secret(text: str) -> bool:
    """A value that is a secret whatever field holds it: a private key (read by
    `${file("deploy.pem")}` into a description, or pasted where the public one goes)."""
    return "PRIVATE KEY" in text


def holds_secret(value: Any) -> bool:
    """True when a string anywhere in `value` contains a secret the run handles, or is one
    by its look (`looks_secret`): a value built from a secret (a live `mount` that copies
    a name made from a key) is one too."""
    if isinstance(value, str):
        return looks_secret(value) or scrub(value) != value
    if isinstance(value, dict):
        return any(holds_secret(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(holds_secret(v) for v in value)
    return False


def new_salt() -> str:
    """A per-plan salt: the same secret pins differently in two plan files."""
    return secrets.token_hex(16)
