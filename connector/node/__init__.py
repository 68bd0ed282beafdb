"""The managed local node (download, configure, start/stop, status) and what a cluster can do.

``launcher`` holds ``LocalElasticsearch``, which puts the parts together: ``java`` finds a JDK,
``distribution`` fetches and unpacks the server, ``plugin`` installs the project's own plugin into it,
``configuration`` builds the node's command line, environment and config dir, ``service_user`` drops
root, ``process`` has the pid, port and lock helpers. ``cluster`` runs several of them as one loopback
cluster. ``capabilities`` asks any cluster which analyzers, retrievers and plugins it has.
"""
