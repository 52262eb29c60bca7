"""Where state lives: one directory, ``$COLLAPSE_MONITOR_HOME`` (default ``./.collapse-monitor``).

Inside it: ``store.db`` (the trajectory store, SQLite unless
``COLLAPSE_MONITOR_STORE_URL`` names another SQLAlchemy URL), ``mlflow.db``
plus ``mlartifacts/`` (MLflow, ``sqlite:///`` unless
``COLLAPSE_MONITOR_MLFLOW_URI`` is set) and ``prefect-results/`` (cached task
results, JSON). Alert rules are the shipped defaults overlaid with
``$COLLAPSE_MONITOR_RULES`` or, when that is unset, ``rules.toml`` in the home
directory if it exists (``collapse-monitor calibrate`` writes it there).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from monitor.errors import CollapseMonitorError

DEFAULT_HOME = ".collapse-monitor"
DEFAULT_PORT = 9464
# Loop names become file names, MLflow tags and Prometheus label values.
MAX_ROUND = 2**31 - 1  # the store keeps rounds in INTEGER columns: 32-bit on Postgres
_LOOP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class Settings:
    home: Path
    store_url: str
    mlflow_uri: str
    rules_path: Path | None = None

    def rules(self):
        """The resolved alert rules (defaults overlaid with ``rules_path``)."""
        from monitor.engine.rules import load_rules

        return load_rules(self.rules_path)

    @property
    def artifact_root(self) -> Path:
        return self.home / "mlartifacts"

    @property
    def results_dir(self) -> Path:
        return self.home / "prefect-results"


def load_settings(home: str | os.PathLike | None = None, rules: str | os.PathLike | None = None) -> Settings:
    root = Path(home or os.environ.get("COLLAPSE_MONITOR_HOME") or DEFAULT_HOME).resolve()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CollapseMonitorError(f"{root}: cannot create the state directory: {exc.strerror}") from exc
    store_url = os.environ.get("COLLAPSE_MONITOR_STORE_URL") or f"sqlite:///{root / 'store.db'}"
    mlflow_uri = os.environ.get("COLLAPSE_MONITOR_MLFLOW_URI") or f"sqlite:///{root / 'mlflow.db'}"
    rules_path = rules or os.environ.get("COLLAPSE_MONITOR_RULES")
    if rules_path is None and (root / "rules.toml").is_file():
        rules_path = root / "rules.toml"
    return Settings(home=root, store_url=store_url, mlflow_uri=mlflow_uri,
                    rules_path=None if rules_path is None else Path(rules_path).resolve())


def check_loop_name(loop: str) -> str:
    if not isinstance(loop, str) or not _LOOP_NAME.fullmatch(loop):  # match's $ accepts a trailing newline
        raise CollapseMonitorError(
            f"loop {loop!r}: expected 1-128 characters of letters, digits, '_', '.', '-', starting with a letter or digit"
        )
    return loop


def check_round_number(round_number: int) -> int:
    if isinstance(round_number, bool) or not isinstance(round_number, int) or not 0 <= round_number <= MAX_ROUND:
        raise CollapseMonitorError(f"round {round_number!r}: expected an integer from 0 to {MAX_ROUND}")
    return round_number
