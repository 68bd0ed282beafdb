"""The events index's schema: deterministic event ids and the encoding of a feature row."""

from __future__ import annotations

import numpy as np

from connector.events.schema import click_event_id, finite_list, impression_event_id


def test_ids_are_deterministic() -> None:
    assert click_event_id("r", "d") == click_event_id("r", "d") != click_event_id("r", "e")
    assert impression_event_id("r1") == impression_event_id("r1") != impression_event_id("r2")
    assert finite_list(np.array([1.5, np.nan, np.inf])) == [1.5, None, None]
