"""Events to alerts and assets: the rule loader and engine, the asset tracker (imports only `pipeline`)."""
