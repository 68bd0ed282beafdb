"""The simulated users by name: ``make_click_model("navigational")`` and the names it knows.

``hybridrank simulate --click-model NAME``, the config's ``feedback.click_model`` (what the demo and
``FeedbackLoop`` use) and the sensitivity bench all choose their users here:

- ``position-based``: DESIGN.md's position-based model (``ltr.clicks.simulated_users``), the only
  one that can add a freshness preference;
- ``perfect``, ``navigational``, ``informational``, ``cascade``: cascade users
  (``ltr.clicks.cascade_users``).

Every model reads relevance levels relative to the collection's top grade, and takes a per-user
click propensity spread (``propensity_sd``; 0 = identical users).
"""

from __future__ import annotations

from typing import get_args

from hybridrank.config import ClickModelName
from ltr.clicks.cascade_users import CascadeModel, cascade_presets
from ltr.clicks.simulated_users import ClickModel, FreshnessPreference, PositionBasedModel

CLICK_MODELS: tuple[str, ...] = get_args(ClickModelName)


def make_click_model(name: str, *, propensity_sd: float = 0.0, freshness: FreshnessPreference | None = None,
                     dwell: bool = True) -> ClickModel:
    """The simulated users called ``name``; ``ValueError`` (naming the choices) for an unknown one, or
    for a freshness preference on a model that has none."""
    if name == "position-based":
        return PositionBasedModel(freshness=freshness, propensity_sd=propensity_sd, dwell=dwell)
    presets = cascade_presets()
    if name not in presets:
        raise ValueError(f"unknown click model {name!r}; choose one of {', '.join(CLICK_MODELS)}")
    if freshness is not None:
        raise ValueError(f"click model {name!r} has no freshness preference: use position-based")
    click, stop = presets[name]
    return CascadeModel(name, click, stop, propensity_sd=propensity_sd, dwell=dwell)
