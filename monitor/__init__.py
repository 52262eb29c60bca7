"""collapse-monitor: store, derivatives, alerts, exporters and the CLI."""

__version__ = "0.1.0"
