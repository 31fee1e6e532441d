#!/bin/sh
# Run once by the postgres image when it initialises the primary's data directory: a role the
# replica streams WAL as, and the pg_hba line that lets it connect for replication.
set -eu
psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" <<SQL
CREATE ROLE replicator WITH REPLICATION LOGIN PASSWORD '$REPLICATION_PASSWORD';
SQL
echo "host replication replicator all scram-sha-256" >> "$PGDATA/pg_hba.conf"
