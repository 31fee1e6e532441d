#!/bin/sh
# The replica's entrypoint: on first start, copy the primary (pg_basebackup, which writes
# standby.signal and primary_conninfo with -R, and creates a replication slot so the primary
# keeps the WAL the replica has not received), then run as a hot standby.
set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    export PGPASSWORD="$REPLICATION_PASSWORD"
    pg_basebackup -h postgres-primary -U replicator -D "$PGDATA" -R -X stream \
        -C -S replica_1 --checkpoint=fast
    chmod 0700 "$PGDATA"
fi
exec postgres -c max_connections=300 -c hot_standby=on
