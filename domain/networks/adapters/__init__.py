"""One module per network: its facts (LIMITS, OAUTH, SPEC) at the top, then its client.
The list of all of them is domain.networks.catalog.CATALOG."""
