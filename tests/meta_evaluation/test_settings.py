"""The full run's sizes: text loops at half the seeds, every loop's false alarms on >= 3,000 C0 rounds."""

import pytest

from monitor.meta_evaluation import runner as R
from monitor.cli import build_parser
from monitor.cli.meta_evaluate import _command_line


def test_full_run_puts_text_loops_at_half_the_seeds_with_as_many_c0_rounds():
    s = R.default_settings(False)
    assert s.seeds == tuple(range(8)) and s.seeds_of("L1-d1-M20") == s.seeds
    assert s.seeds_of("L3-tau1.0") == s.seeds_of("L4-text") == (0, 1, 2, 3)
    numeric_c0 = s.schedule("C0-L1-d1-M20")[0] * len(s.seeds_of("L1-d1-M20"))
    text_c0 = s.schedule("C0-L4-text")[0] * len(s.seeds_of("L4-text"))
    assert numeric_c0 == text_c0 == 3000
    # collapse loops and the other controls keep their schedules
    assert s.schedule("L3-tau1.0") == s.schedule("C2-L3-tau1.0") == R.FULL_SCHEDULES["L3-tau1.0"]
    assert s.pool_ratio == 256


def test_jobs_and_nulls_follow_each_familys_seeds():
    s = R.default_settings(False, seeds=4, text_seeds=1)
    nulls = R.make_null_jobs(["L1-d1-M20", "L4-text"], s)
    assert sorted((j.family, j.seed) for j in nulls) == [("L1-d1-M20", i) for i in range(4)] + [("L4-text", 0)]
    jobs = R.make_jobs(["L4-text"], s, rules=None)
    assert {j.seed for j in jobs} == {0} and len(jobs) == len(R.family_members("L4-text"))
    # the first text seed's runs check Evidently
    assert all(j.check_evidently for j in jobs)
    assert R.default_settings(True).text_seeds is None  # quick: every loop at both seeds


def test_text_seeds_are_validated_and_echoed_in_the_command():
    with pytest.raises(ValueError, match="text_seeds"):
        R.default_settings(False, text_seeds=0)
    with pytest.raises(ValueError, match="text_seeds"):
        R.BenchSettings(False, (0,), 301, 0, 99, text_seeds=())
    args = build_parser().parse_args(["bench", "--seeds", "6", "--text-seeds", "2"])  # the old name is an alias
    assert args.text_seeds == 2
    assert args.func.__name__ == "_run_meta_evaluate"
    assert _command_line(args) == "collapse-monitor meta-evaluate --seeds 6 --text-seeds 2"
