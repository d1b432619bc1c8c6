"""Where we remember which live objects the manifests own and what we last applied."""
from reconciler.state.base import LockInfo, ResourceState, StateDoc, StateStore  # noqa: F401
