-- 0005: the process group of every running step, as SQLite's 0008. Never edit once shipped.

-- Recorded before a step's command starts, deleted when it ends; a row left behind names a
-- group a dead engine may have left running: the next engine of that host kills it first.
CREATE TABLE step_processes (
    host         TEXT    NOT NULL,
    pgid         INTEGER NOT NULL,  -- the group; its leader's pid
    job_id       TEXT    NOT NULL,
    step_id      TEXT    NOT NULL,
    attempt      INTEGER NOT NULL,
    started      TEXT    NOT NULL,  -- the leader's identity (boot id and start time)
    node_id      TEXT    NOT NULL,
    node_pid     INTEGER NOT NULL,
    node_started TEXT    NOT NULL,
    recorded     BIGINT  NOT NULL,  -- epoch ms
    PRIMARY KEY (host, pgid)
);
CREATE INDEX step_processes_by_job ON step_processes (job_id);
