"""Image-text pairs (survey §6.2): paired embeddings from the user's own encoder.

A round is an ``.npz`` of ``image [N, D]`` and ``text [N, D]`` (optionally ``caption [N]`` strings), or a
``.jsonl`` manifest of image files and captions that the loop's ``--encoder`` embeds
(:mod:`monitor.inputs.pairs`, :mod:`monitor.inputs.encoders`). The metrics: alignment and in-round retrieval
(:mod:`metrics_core.image_text`), the embedding suite on each side against the reference's same side
(``image_*``, ``text_*``), the text suite on the captions when both sides have them (``caption_*``) and, with
``--schema``, the share of captions that are JSON records valid under it (``well_formed_rate``); the
loop's unprefixed embedding suite runs on each pair's joint vector, its two unit-normalised halves side by side.
Evidently's drift report (:func:`monitor.publishing.evidently_report.image_text_drift_report`) tests each side's
pooled principal components and, when both rounds have captions, their text descriptors.
"""

from __future__ import annotations

import numpy as np

from monitor.errors import CollapseMonitorError, InputError
from monitor.modalities import LoadedInput, Modality


def _unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)  # the loader refuses zero rows


def joint_embedding(image: np.ndarray, text: np.ndarray) -> np.ndarray:
    """Each pair as one vector: its image and caption embeddings, each scaled to unit length, side by side.

    >>> joint_embedding(np.array([[3.0, 4.0]]), np.array([[0.0, 2.0]])).tolist()
    [[0.6, 0.8, 0.0, 1.0]]
    """
    return np.hstack([_unit_rows(image), _unit_rows(text)])


class ImageTextModality(Modality):
    name = "image_text"
    has_own_metrics = reports_drift = True
    drift_view = "image_text"

    def load(self, path, role, round_number, options, reference=None, *, max_samples=True):
        from pathlib import Path

        from monitor import inputs

        cap = self._cap(options, max_samples)
        if Path(path).suffix.lower() == ".jsonl":
            if options.encoder is None:
                where = f"{path} ({role})" if round_number is None else f"{path} ({role}, round {round_number})"
                raise InputError(f"{where}: a .jsonl image-text manifest needs --encoder MODULE:FUNCTION to embed "
                                 "its images and captions (or give an .npz of embeddings)")
            loaded = inputs.encode_manifest(path, options.encoder, role, round_number, max_samples=cap,
                                            seed=options.seed)
        else:
            loaded = inputs.load_pairs(path, role, round_number, max_samples=cap, seed=options.seed)
        return LoadedInput(loaded.path, loaded, loaded.fingerprint, loaded)

    def _check_specific(self, reference, round_, options, round_number):
        ref, rnd = reference.data, round_.data
        if ref.image.shape[1] != rnd.image.shape[1] or ref.text.shape[1] != rnd.text.shape[1]:
            raise InputError(f"{round_.path} (round, round {round_number}): embeddings of dimension "
                             f"{rnd.image.shape[1]} (image) and {rnd.text.shape[1]} (text), but the reference "
                             f"{reference.path} has {ref.image.shape[1]} and {ref.text.shape[1]}; embed both with "
                             "one encoder")

    def check_option_files(self, constraints_path, schema_path):
        from monitor import inputs

        if constraints_path is not None:
            raise InputError(f"{constraints_path}: --constraints is for tabular and graph rounds; structured "
                             "captions are checked against --schema")
        if schema_path is not None:
            inputs.load_json_schema(schema_path)

    def prepare(self, pipe, *, constraints_path, schema_path):
        from metrics_core.suite import fit_suite_reference

        from monitor import inputs

        reference = pipe.reference
        pipe.caption_schema = None if schema_path is None else inputs.load_json_schema(schema_path)
        config = pipe.suite_config()
        # copies: the loaded arrays are read-only, and torch wants writable ones
        pipe.side_profiles = {"image": fit_suite_reference(np.array(reference.image, dtype=np.float64), config),
                              "text": fit_suite_reference(np.array(reference.text, dtype=np.float64), config)}
        pipe.caption_reference = None
        if reference.captions is not None:
            from metrics_core.text import fit_text_reference

            pipe.caption_reference = fit_text_reference(list(reference.captions))
        pipe._reference_embeddings = joint_embedding(reference.image, reference.text)

    def embed(self, pipe, round_data):
        return joint_embedding(round_data.image, round_data.text)

    def drift_report(self, reference_data, round_data, *, reference_embeddings, round_embeddings, columns,
                     html_path, seed):
        from monitor.publishing import evidently_report

        # Each side's own embeddings (not the joint vectors), and caption descriptors only when both rounds have
        # captions to compare.
        captioned = reference_data.captions is not None and round_data.captions is not None
        return evidently_report.image_text_drift_report(
            reference_data.image, round_data.image, reference_data.text, round_data.text,
            reference_captions=list(reference_data.captions) if captioned else None,
            round_captions=list(round_data.captions) if captioned else None, html_path=html_path, seed=seed)

    def own_metrics(self, pipe, round_data, *, n_boot, round_where):
        from metrics_core.image_text import image_text_suite
        from metrics_core.registry import CAPTION_EMBEDDING_PREFIX, CAPTION_PREFIX, IMAGE_PREFIX, metric_names
        from metrics_core.suite import embedding_suite

        reference = pipe.reference
        config = pipe.suite_config(n_boot)
        try:
            out = dict(image_text_suite(round_data.image, round_data.text, n_boot=n_boot, seed=pipe.seed))
            for side, prefix, ref, rnd in (("image", IMAGE_PREFIX, reference.image, round_data.image),
                                           ("text", CAPTION_EMBEDDING_PREFIX, reference.text, round_data.text)):
                suite = embedding_suite(np.array(ref, dtype=np.float64), np.array(rnd, dtype=np.float64),
                                        config=config, profile=pipe.side_profiles[side])
                out.update({prefix + name: est for name, est in suite.items()})
            if pipe.caption_schema is not None and round_data.captions is not None:
                from metrics_core.image_text import well_formed_rate

                out["well_formed_rate"] = well_formed_rate(list(round_data.captions), pipe.caption_schema,
                                                           n_boot=n_boot, seed=pipe.seed)
            if pipe.caption_reference is not None and round_data.captions is not None:
                from metrics_core.text import text_suite

                for name, est in text_suite(pipe.caption_reference, list(round_data.captions), n_boot=n_boot,
                                            seed=pipe.seed).items():
                    out[CAPTION_PREFIX + name] = est
        except ValueError as exc:
            raise InputError(f"{round_where}: {exc}") from exc
        except CollapseMonitorError:
            raise
        return {name: out[name] for name in metric_names(self.name) if name in out}
