-- 0001: batch jobs as three kinds of rows (the steps-as-rows design of SQLite's 0003), the
-- output of each attempt of their steps, and cube segments. Applied by
-- engine/store/postgres/db.py inside one transaction; never edit once shipped.
-- Times are epoch ms (BIGINT); JSON columns are TEXT (the codec's text both ways).

-- The summary: filters, ordering, compare-and-set, and the job's own changing fields.
CREATE TABLE jobs (
    id             TEXT   NOT NULL PRIMARY KEY,
    project        TEXT   NOT NULL,
    cube           TEXT   NOT NULL,
    cube_key       TEXT   NOT NULL,  -- cube name casefolded: the case-insensitive cube filter
    state          TEXT   NOT NULL,
    priority       BIGINT NOT NULL,
    create_time    BIGINT NOT NULL,
    last_modified  BIGINT NOT NULL,
    version        BIGINT NOT NULL,  -- optimistic concurrency: +1 on every write
    start_time     BIGINT NOT NULL DEFAULT 0,
    end_time       BIGINT NOT NULL DEFAULT 0,
    interrupt_time BIGINT NOT NULL DEFAULT 0,
    build_instance TEXT   NOT NULL DEFAULT 'unknown'
);
CREATE INDEX jobs_by_modified ON jobs (last_modified DESC, id DESC);
CREATE INDEX jobs_by_project ON jobs (project, last_modified DESC, id DESC);
CREATE INDEX jobs_by_state ON jobs (state, create_time, id);

-- The static part, written once at submit: name, build type, segment, submitter, params and
-- the step specs (JSON).
CREATE TABLE job_definitions (
    job_id TEXT NOT NULL PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    data   TEXT NOT NULL
);

-- The changing part of each step; a transition updates only the steps that changed.
CREATE TABLE job_steps (
    job_id     TEXT     NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    sequence   INTEGER  NOT NULL,
    state      TEXT     NOT NULL,
    start_time BIGINT   NOT NULL DEFAULT 0,
    end_time   BIGINT   NOT NULL DEFAULT 0,
    wait_time  BIGINT   NOT NULL DEFAULT 0,
    info       TEXT     NOT NULL DEFAULT '{}',
    attempts   BIGINT   NOT NULL DEFAULT 0,
    retries    BIGINT   NOT NULL DEFAULT 0,
    reattach   SMALLINT NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, sequence)
);

CREATE TABLE step_outputs (
    step_id TEXT    NOT NULL,  -- {job_id}-{NN}
    attempt INTEGER NOT NULL,
    job_id  TEXT    NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    text    TEXT    NOT NULL,
    PRIMARY KEY (step_id, attempt)
);
CREATE INDEX step_outputs_by_job ON step_outputs (job_id);

-- Cube segments: [range_start, range_end) in epoch ms (a full build ends at 2^63 - 1).
CREATE TABLE segments (
    uuid        TEXT   NOT NULL PRIMARY KEY,
    cube        TEXT   NOT NULL,
    name        TEXT   NOT NULL,
    range_start BIGINT NOT NULL,
    range_end   BIGINT NOT NULL,
    status      TEXT   NOT NULL,
    merged_from TEXT   NOT NULL DEFAULT '[]'
);
CREATE INDEX segments_by_cube ON segments (cube, range_start);
