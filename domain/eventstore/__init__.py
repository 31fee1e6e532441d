"""The event store's machinery, one job per module, under the domain's commands.

- `application`: the base application: saves with idempotency keys, decisions retried
- `recorder`: the events table's recorder, its append lock and conditional appends
- `group_commit`: commands waiting together share one append transaction
- `idempotency`: Idempotency-Key claims and their records (an aggregate in the log)
- `numbers`: integer public ids (a sequence per kind)
- `schema`: the lock every process holds around its start-up DDL
- `transcoder`: stored event state as JSON, read with orjson
"""
