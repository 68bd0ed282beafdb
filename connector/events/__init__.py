"""The event log: impressions and clicks made durable on local disk, then shipped to the events index.

``schema`` is the shape of the events index (types, ids, mapping, timestamps); ``intake`` checks the
clicks an app posts; ``spool`` holds ``EventLog``, which writes the ``segments`` files and hands
them to ``shipping`` (bulk create, exactly once, dead letters); ``metrics`` counts what happens.
"""
