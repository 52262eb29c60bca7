"""``collapse-monitor serve``: the exporter until SIGINT or SIGTERM."""

from __future__ import annotations

import signal
import threading

from monitor.config import load_settings
from monitor.errors import CollapseMonitorError
from monitor.exporter import Exporter
from monitor.render import console
from monitor.store import TrajectoryStore


def run(args) -> int:
    settings = load_settings(args.home)
    store = TrajectoryStore(settings.store_url)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        exporter = Exporter(store, args.host, args.port)
    except OSError as exc:
        raise CollapseMonitorError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from exc
    console().print(f"serving {exporter.url} from {settings.store_url} (Ctrl-C to stop)")
    try:
        while not stop.wait(0.5):
            pass
    finally:
        exporter.stop()
        store.close()
    console().print("exporter stopped")
    return 0
