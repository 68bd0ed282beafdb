"""Getting documents into a hybridrank index: ``documents`` (readers), ``mapping`` (the index body),
``index_setup`` (create or check the index), ``prepare`` (one document, validated and hashed) and
``indexer`` (the pipelined, idempotent bulk load)."""
