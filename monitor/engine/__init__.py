"""The alarm engine: derivatives, rules, alert states, the per-loop null, the sequential charts and calibration."""
