-- 0008: the process group of every running step (no orphans after a crash).
-- Applied by engine/store/sqlite/migrations.py inside one transaction; never edit once shipped.

-- A step's group is recorded before its command starts and deleted when it ends; a row left
-- behind names a group an engine that died may have left running: the next engine of that host
-- kills it (after checking it is still the same process) before the step runs again.
CREATE TABLE step_processes (
    host         TEXT    NOT NULL,
    pgid         INTEGER NOT NULL,  -- the group; its leader's pid
    job_id       TEXT    NOT NULL,
    step_id      TEXT    NOT NULL,
    attempt      INTEGER NOT NULL,
    started      TEXT    NOT NULL,  -- the leader's identity (boot id and start time)
    node_id      TEXT    NOT NULL,  -- the node that ran the step
    node_pid     INTEGER NOT NULL,  -- and its process
    node_started TEXT    NOT NULL,  -- that process's identity
    recorded     INTEGER NOT NULL,  -- epoch ms
    PRIMARY KEY (host, pgid)
);
CREATE INDEX step_processes_by_job ON step_processes (job_id);
