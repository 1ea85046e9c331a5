-- 0002: Kylin 5 streaming jobs (SPEC §5): jobs, their START/STOP/ERROR records, micro-batch
-- stats and streaming segments. Applied by engine/store/sqlite_db.py inside one transaction;
-- never edit once shipped.

-- One row per job ({model_id}_build / {model_id}_merge). Times are epoch ms; NULL = never.
CREATE TABLE streaming_jobs (
    uuid             TEXT    NOT NULL PRIMARY KEY,
    model_id         TEXT    NOT NULL,
    model_alias      TEXT    NOT NULL,
    project          TEXT    NOT NULL,
    owner            TEXT    NOT NULL,
    job_type         TEXT    NOT NULL CHECK (job_type IN ('STREAMING_BUILD', 'STREAMING_MERGE')),
    status           TEXT    NOT NULL CHECK (status IN ('STOPPED', 'STARTING', 'RUNNING',
                                                        'STOPPING', 'ERROR', 'LAUNCHING_ERROR')),
    mvcc             INTEGER NOT NULL,  -- compare-and-set: +1 on every write
    create_time      INTEGER NOT NULL,
    last_modified    INTEGER NOT NULL,
    params           TEXT    NOT NULL DEFAULT '{}',  -- JSON object, string -> string
    fact_table       TEXT,
    subscribe        TEXT,
    last_update_time INTEGER,
    last_start_time  INTEGER,
    last_end_time    INTEGER,
    last_batch_count INTEGER,
    yarn_app_id      TEXT    NOT NULL DEFAULT '',
    yarn_app_url     TEXT    NOT NULL DEFAULT '',
    process_id       TEXT,
    node_info        TEXT,
    job_execution_id INTEGER,
    action           TEXT,
    skip_listener    INTEGER NOT NULL DEFAULT 0,
    last_record_time INTEGER,  -- create_time of the newest record (kept with the job)
    data_latency     INTEGER   -- the build's latest min_data_latency, >= 0 (kept with the job)
);

-- START / STOP / ERROR, newest first per job.
CREATE TABLE streaming_records (
    id          INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    job_id      TEXT    NOT NULL REFERENCES streaming_jobs (uuid) ON DELETE CASCADE,
    project     TEXT    NOT NULL,
    action      TEXT    NOT NULL CHECK (action IN ('START', 'STOP', 'ERROR')),
    create_time INTEGER NOT NULL
);
CREATE INDEX streaming_records_by_job ON streaming_records (job_id, create_time DESC, id DESC);

-- One row per micro-batch; GET /streaming_jobs/stats reads a time window of one job.
CREATE TABLE streaming_stats (
    id               INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    job_id           TEXT    NOT NULL REFERENCES streaming_jobs (uuid) ON DELETE CASCADE,
    project          TEXT    NOT NULL,
    batch_row_num    INTEGER NOT NULL,
    rows_per_second  INTEGER NOT NULL,
    processing_time  INTEGER NOT NULL,  -- ms
    min_data_latency INTEGER NOT NULL,  -- ms
    max_data_latency INTEGER NOT NULL,  -- ms
    create_time      INTEGER NOT NULL
);
CREATE INDEX streaming_stats_by_job ON streaming_stats (job_id, create_time DESC, id DESC);

-- READY segments of streaming models: source offsets [start_offset, end_offset); a merge
-- replaces its members by one segment of the next layer.
CREATE TABLE streaming_segments (
    id             TEXT    NOT NULL PRIMARY KEY,
    model_id       TEXT    NOT NULL,
    project        TEXT    NOT NULL,
    start_offset   INTEGER NOT NULL,
    end_offset     INTEGER NOT NULL,
    min_event_time INTEGER NOT NULL,
    max_event_time INTEGER NOT NULL,
    row_count      INTEGER NOT NULL,
    size_bytes     INTEGER NOT NULL,
    create_time    INTEGER NOT NULL,
    layer          INTEGER NOT NULL DEFAULT 0,
    status         TEXT    NOT NULL DEFAULT 'READY'
);
CREATE INDEX streaming_segments_by_model ON streaming_segments (model_id, start_offset);
