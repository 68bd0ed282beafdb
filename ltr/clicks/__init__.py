"""Learning from clicks: ``impressions`` (the event log read back), ``pbm`` (the position-based click
model), ``click_model`` (debiased, smoothed CTR statistics), ``training_set`` (click-trained models);
and, as no public click log is reachable, simulated users: ``simulated_users`` (what they click),
``simulator`` (their sessions against the endpoint), ``films`` (a collection they search) and
``feedback_loop`` (the endpoint, experiments and simulated users in one process)."""
