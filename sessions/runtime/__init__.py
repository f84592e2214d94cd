"""The node runtime: what one process holding live sessions runs (sessions.runtime.node)."""
