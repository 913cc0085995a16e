"""A sweep found by its name: what a reproduction or a phase diagram runs again continues."""

from __future__ import annotations

from groklab.errors import ConfigError
from groklab.store import Store
from groklab.sweeps.spec import SweepSpec


def stored_as(store: Store, spec: SweepSpec) -> str | None:
    """The id of the stored sweep named `spec.name` (the newest), None if there is none. One stored with other
    settings is refused: continuing it would judge runs the command did not ask for."""
    existing = [sw for sw in store.sweeps() if sw.name == spec.name]
    if not existing:
        return None
    stored = {k: v for k, v in existing[-1].spec.items() if k != "execution"}
    if stored != spec.as_dict():
        changed = sorted(k for k in spec.as_dict() if stored.get(k) != spec.as_dict()[k])
        raise ConfigError(
            "sweep",
            f"a sweep named {spec.name!r} is stored in {store.root} with other {', '.join(changed)}; "
            "use another --runs-dir (or --name) to start afresh, or the same settings to continue it",
        )
    return existing[-1].id
