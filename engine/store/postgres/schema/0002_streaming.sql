-- 0002: Kylin 5 streaming jobs (SPEC §5): jobs, their START/STOP/ERROR records, micro-batch
-- stats and streaming segments, as SQLite's 0002. Never edit once shipped.

CREATE TABLE streaming_jobs (
    uuid             TEXT    NOT NULL PRIMARY KEY,
    model_id         TEXT    NOT NULL,
    model_alias      TEXT    NOT NULL,
    project          TEXT    NOT NULL,
    owner            TEXT    NOT NULL,
    job_type         TEXT    NOT NULL CHECK (job_type IN ('STREAMING_BUILD', 'STREAMING_MERGE')),
    status           TEXT    NOT NULL CHECK (status IN ('STOPPED', 'STARTING', 'RUNNING',
                                                        'STOPPING', 'ERROR', 'LAUNCHING_ERROR')),
    mvcc             BIGINT  NOT NULL,
    create_time      BIGINT  NOT NULL,
    last_modified    BIGINT  NOT NULL,
    params           TEXT    NOT NULL DEFAULT '{}',
    fact_table       TEXT,
    subscribe        TEXT,
    last_update_time BIGINT,
    last_start_time  BIGINT,
    last_end_time    BIGINT,
    last_batch_count BIGINT,
    yarn_app_id      TEXT    NOT NULL DEFAULT '',
    yarn_app_url     TEXT    NOT NULL DEFAULT '',
    process_id       TEXT,
    node_info        TEXT,
    job_execution_id BIGINT,
    action           TEXT,
    skip_listener    BOOLEAN NOT NULL DEFAULT FALSE,
    last_record_time BIGINT,
    data_latency     BIGINT
);

CREATE TABLE streaming_records (
    id          BIGSERIAL NOT NULL PRIMARY KEY,
    job_id      TEXT      NOT NULL REFERENCES streaming_jobs (uuid) ON DELETE CASCADE,
    project     TEXT      NOT NULL,
    action      TEXT      NOT NULL CHECK (action IN ('START', 'STOP', 'ERROR')),
    create_time BIGINT    NOT NULL
);
CREATE INDEX streaming_records_by_job ON streaming_records (job_id, create_time DESC, id DESC);

CREATE TABLE streaming_stats (
    id               BIGSERIAL NOT NULL PRIMARY KEY,
    job_id           TEXT      NOT NULL REFERENCES streaming_jobs (uuid) ON DELETE CASCADE,
    project          TEXT      NOT NULL,
    batch_row_num    BIGINT    NOT NULL,
    rows_per_second  BIGINT    NOT NULL,
    processing_time  BIGINT    NOT NULL,
    min_data_latency BIGINT    NOT NULL,
    max_data_latency BIGINT    NOT NULL,
    create_time      BIGINT    NOT NULL
);
CREATE INDEX streaming_stats_by_job ON streaming_stats (job_id, create_time DESC, id DESC);

CREATE TABLE streaming_segments (
    id             TEXT    NOT NULL PRIMARY KEY,
    model_id       TEXT    NOT NULL,
    project        TEXT    NOT NULL,
    start_offset   BIGINT  NOT NULL,
    end_offset     BIGINT  NOT NULL,
    min_event_time BIGINT  NOT NULL,
    max_event_time BIGINT  NOT NULL,
    row_count      BIGINT  NOT NULL,
    size_bytes     BIGINT  NOT NULL,
    create_time    BIGINT  NOT NULL,
    layer          INTEGER NOT NULL DEFAULT 0,
    status         TEXT    NOT NULL DEFAULT 'READY'
);
CREATE INDEX streaming_segments_by_model ON streaming_segments (model_id, start_offset);
