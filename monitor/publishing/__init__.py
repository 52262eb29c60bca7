"""Publishing: the Prometheus exporter, MLflow tracking, plots, Evidently reports and console rendering."""
