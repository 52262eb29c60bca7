"""collapse-monitor: store, derivatives, alerts, exporters, the CLI and the in-loop API."""

__version__ = "0.1.0"
__all__ = ["CollapseMonitor", "Verdict", "__version__"]


def __getattr__(name: str):
    # Lazy: `import monitor` (the CLI's parser) must not import Prefect and torch.
    if name in ("CollapseMonitor", "Verdict"):
        from monitor import api

        return getattr(api, name)
    raise AttributeError(f"module 'monitor' has no attribute {name!r}")
