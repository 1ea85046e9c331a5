-- 0003: leases on jobs and the registry of nodes (SPEC §9), as SQLite's 0004.
-- Never edit once shipped.

-- A released lease keeps its row (owner '', expires 0): the next token is still greater.
CREATE TABLE leases (
    job_id  TEXT   NOT NULL PRIMARY KEY,  -- a batch job's uuid or a streaming job's id
    owner   TEXT   NOT NULL,              -- node id; '' = nobody
    token   BIGINT NOT NULL,              -- fencing token: +1 on every claim
    expires BIGINT NOT NULL               -- epoch ms
);
CREATE INDEX leases_by_owner ON leases (owner);

CREATE TABLE nodes (
    node_id        TEXT    NOT NULL PRIMARY KEY,
    host           TEXT    NOT NULL,
    pid            INTEGER NOT NULL,
    started        BIGINT  NOT NULL,
    last_heartbeat BIGINT  NOT NULL,
    running_jobs   INTEGER NOT NULL
);
