"""semcode indexer: discover, chunk, store, watch (later issues). Depends on encoder only."""
