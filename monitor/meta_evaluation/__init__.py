"""Meta-evaluation benchmark (survey §8.1): seeded collapse loops and controls with
ground-truth onsets, scored for lead time, false alarms and ROC-AUC against baselines."""
