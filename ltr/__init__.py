"""Learning to rank: ``ranking`` (how a window is ordered), ``training`` (feature log to a served model),
``evaluation``, ``clicks`` (click models, click-derived labels, simulated users), ``experiments`` and
``cross_encoder``."""
