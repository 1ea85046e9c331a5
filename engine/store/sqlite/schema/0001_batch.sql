-- 0001: batch jobs, the output of each attempt of their steps, and cube segments.
-- Applied by engine/store/sqlite_db.py inside one transaction; never edit once shipped.

-- One row per job: the whole record (steps included) is the JSON in `data`
-- (engine/store/codec.py), so a step transition is ONE UPDATE of one row. The other columns
-- copy what the filters, ordering and compare-and-set need. `data` comes last so that filters
-- never read its (overflow) pages.
CREATE TABLE jobs (
    id            TEXT    NOT NULL PRIMARY KEY,
    project       TEXT    NOT NULL,
    cube          TEXT    NOT NULL,
    cube_key      TEXT    NOT NULL,  -- cube name casefolded: the case-insensitive cube filter
    state         TEXT    NOT NULL,
    priority      INTEGER NOT NULL,
    create_time   INTEGER NOT NULL,  -- epoch ms
    last_modified INTEGER NOT NULL,  -- epoch ms
    version       INTEGER NOT NULL,  -- optimistic concurrency: +1 on every write
    data          TEXT    NOT NULL
);

-- GET /jobs: newest change first, id breaks ties. It covers every filter column (cube_key is a
-- substring match no index can seek), so a filtered page is found in the index alone and only
-- the page's rows are read from the table.
CREATE INDEX jobs_by_modified ON jobs (last_modified DESC, id DESC, state, project, cube_key);
-- The project filter seeks here.
CREATE INDEX jobs_by_project ON jobs (project, last_modified DESC, id DESC);
-- Recovery and scheduling (jobs in some states, oldest first) and counts by state.
CREATE INDEX jobs_by_state ON jobs (state, create_time, id);

-- The captured output of one attempt of one step; deleted with its job.
CREATE TABLE step_outputs (
    step_id TEXT    NOT NULL,  -- {job_id}-{NN}
    attempt INTEGER NOT NULL,
    job_id  TEXT    NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    text    TEXT    NOT NULL,
    PRIMARY KEY (step_id, attempt)
);
CREATE INDEX step_outputs_by_job ON step_outputs (job_id);

-- Cube segments: a range [range_start, range_end) in epoch ms (a full build ends at 2^63 - 1).
CREATE TABLE segments (
    uuid        TEXT    NOT NULL PRIMARY KEY,
    cube        TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    range_start INTEGER NOT NULL,
    range_end   INTEGER NOT NULL,
    status      TEXT    NOT NULL,              -- NEW -> READY
    merged_from TEXT    NOT NULL DEFAULT '[]'  -- JSON array of the uuids a merge replaces
);
CREATE INDEX segments_by_cube ON segments (cube, range_start);
