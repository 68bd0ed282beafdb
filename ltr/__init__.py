"""Learning to rank: judgments, evaluation, training, the model contract, experiments."""
