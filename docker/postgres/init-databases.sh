#!/bin/sh
# Runs once, when the Postgres volume is first initialised
# (/docker-entrypoint-initdb.d). POSTGRES_DB (the trajectory store) is created
# by the image itself; this adds the MLflow and Prefect databases, owned by
# POSTGRES_USER.
set -eu
for db in "$MLFLOW_DB" "$PREFECT_DB"; do
  echo "creating database $db"
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -c "CREATE DATABASE \"$db\" OWNER \"$POSTGRES_USER\";"
done
