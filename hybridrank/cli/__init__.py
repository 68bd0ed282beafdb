"""The ``hybridrank`` command line: ``main`` is the lazy group, every other module one command group that
parses its options, calls one library function and prints; ``support`` is what they share."""
