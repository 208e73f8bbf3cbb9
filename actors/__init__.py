"""The Ray shell: entity hosts, the router, adapter actors and the runtime."""
