-- 0004: leases on jobs and the registry of nodes (SPEC §9: several engines on one store).
-- Applied by engine/store/sqlite/migrations.py inside one transaction; never edit once shipped.

-- The lease of one job (a batch job's uuid or a streaming job's id: the two never collide).
-- A row is kept when its lease is released (owner '' and expires 0) so that the next claim's
-- fencing token is still greater than every earlier one.
CREATE TABLE leases (
    job_id  TEXT    NOT NULL PRIMARY KEY,
    owner   TEXT    NOT NULL,  -- node id; '' = nobody
    token   INTEGER NOT NULL,  -- fencing token: +1 on every claim
    expires INTEGER NOT NULL   -- epoch ms; a lease with expires <= now may be claimed
);
CREATE INDEX leases_by_owner ON leases (owner);

-- Every node that runs on this store; a heartbeat refreshes its row.
CREATE TABLE nodes (
    node_id        TEXT    NOT NULL PRIMARY KEY,
    host           TEXT    NOT NULL,
    pid            INTEGER NOT NULL,
    started        INTEGER NOT NULL,  -- epoch ms
    last_heartbeat INTEGER NOT NULL,  -- epoch ms
    running_jobs   INTEGER NOT NULL
);
