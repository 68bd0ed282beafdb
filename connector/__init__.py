"""Everything that talks to Elasticsearch or serves HTTP."""
