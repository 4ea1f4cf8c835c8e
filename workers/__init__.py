"""Background jobs (dramatiq): broker.py builds the broker and wraps actors; one module
per context holds its actors."""
