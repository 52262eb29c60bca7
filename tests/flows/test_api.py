"""The in-loop API: same flow, store and MLflow as the CLI, from Python objects or paths."""

import numpy as np
import pandas as pd
import pytest

from monitor import CollapseMonitor, Verdict
from monitor.config import load_settings
from monitor.errors import InputError
from monitor.store import TrajectoryStore

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_arrays_in_a_loop_reach_critical_and_land_in_the_store(home):
    rng = np.random.default_rng(7)
    reference = rng.normal(size=(400, 8)).astype(np.float32)
    mon = CollapseMonitor("inloop", reference, n_boot=50)
    verdicts = [mon.audit_round(r, (rng.normal(size=(300, 8)) * s).astype(np.float32))
                for r, s in enumerate([1.0, 0.8, 0.6, 0.4])]
    last = verdicts[-1]
    assert isinstance(last, Verdict) and last.loop == "inloop" and last.round == 3
    assert last.status == "critical" and any(a["metric"] == "recall" for a in last.alerts)
    assert last.risk["risk"] > 0.5 and last.value("recall") < verdicts[0].value("recall")
    store = TrajectoryStore(load_settings().store_url)
    assert store.trajectory("inloop").query("metric == 'recall'")["value"].tolist() == pytest.approx(
        [v.value("recall") for v in verdicts])
    store.close()


def test_texts_and_dataframes_are_materialised_content_addressed(home, tmp_path):
    rng = np.random.default_rng(1)
    words = [f"w{i}" for i in range(300)]

    def texts(n):
        return [" ".join(rng.choice(words, size=10)) + "." for _ in range(n)]

    mon = CollapseMonitor("inloop-text", texts(120), n_boot=0)
    round0 = texts(80)
    v = mon.audit_round(0, round0)
    assert v.status == "ok" and "distinct_2" in v.metrics and "recall" in v.metrics
    files = sorted(p.name for p in (load_settings().home / "inputs" / "inloop-text").iterdir())
    assert len(files) == 2 and all(f.endswith(".jsonl") for f in files)
    mon.audit_round(0, list(round0))  # same content: no new file
    assert len(list((load_settings().home / "inputs" / "inloop-text").iterdir())) == 2

    table = pd.DataFrame({"x": rng.normal(size=100), "c": rng.choice(["a", "b"], 100)})
    tab = CollapseMonitor("inloop-tab", table, n_boot=0)
    path = tmp_path / "round.csv"
    table.sample(frac=0.8, random_state=0).to_csv(path, index=False)
    assert "ks_mean" in tab.audit_round(0, path).metrics  # a path works too


def test_bad_inputs_and_options_are_refused(home):
    with pytest.raises(InputError, match="reference: expected a path, a list of str"):
        CollapseMonitor("x", {"not": "data"})
    with pytest.raises(TypeError, match="unknown option"):
        CollapseMonitor("x", np.zeros((10, 2)), temperature=1)
