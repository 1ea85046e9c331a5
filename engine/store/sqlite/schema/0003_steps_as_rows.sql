-- 0003: steps as rows. A job becomes three kinds of row: its summary in `jobs` (rewritten on
-- every transition, ~150 bytes), its static definition in `job_definitions` (name, segment,
-- params and every step's spec with its command and Hive SQL: written once at submit), and one
-- row per step in `job_steps` (a step transition rewrites only the steps that changed).
-- Existing jobs are moved out of `jobs.data` (the whole job as JSON, 0001) in place; `jobs` is
-- not rebuilt, since dropping it would cascade-delete `step_outputs`. Never edit once shipped.

ALTER TABLE jobs ADD COLUMN start_time INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN end_time INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN interrupt_time INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN build_instance TEXT NOT NULL DEFAULT 'unknown';

-- JSON: {"name", "build_type", "segment": {...}, "submitter", "params" (when set),
-- "steps": [the spec of each step, in sequence order]}.
CREATE TABLE job_definitions (
    job_id TEXT NOT NULL PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    data   TEXT NOT NULL
);

-- What changes about a step; 0 = unset for times, info is a JSON object (string -> string).
CREATE TABLE job_steps (
    job_id     TEXT    NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    sequence   INTEGER NOT NULL,  -- 0-based; the step id is {job_id}-{sequence:02d}
    state      TEXT    NOT NULL,
    start_time INTEGER NOT NULL DEFAULT 0,
    end_time   INTEGER NOT NULL DEFAULT 0,
    wait_time  INTEGER NOT NULL DEFAULT 0,
    info       TEXT    NOT NULL DEFAULT '{}',
    attempts   INTEGER NOT NULL DEFAULT 0,
    retries    INTEGER NOT NULL DEFAULT 0,
    reattach   INTEGER NOT NULL DEFAULT 0,  -- 0 / 1
    PRIMARY KEY (job_id, sequence)
) WITHOUT ROWID;

UPDATE jobs SET
    start_time = coalesce(json_extract(data, '$.start_time'), 0),
    end_time = coalesce(json_extract(data, '$.end_time'), 0),
    interrupt_time = coalesce(json_extract(data, '$.interrupt_time'), 0),
    build_instance = json_extract(data, '$.build_instance');

INSERT INTO job_definitions (job_id, data)
SELECT id, json_set(
    json_remove(data, '$.id', '$.project', '$.cube', '$.priority', '$.state', '$.create_time',
                '$.last_modified', '$.version', '$.build_instance', '$.start_time',
                '$.end_time', '$.interrupt_time', '$.steps'),
    '$.steps',
    json((SELECT json_group_array(json(spec)) FROM (
        SELECT json_extract(step.value, '$.spec') AS spec FROM json_each(jobs.data, '$.steps') AS step
        ORDER BY step.key
    )))
) FROM jobs;

INSERT INTO job_steps (job_id, sequence, state, start_time, end_time, wait_time, info, attempts,
                       retries, reattach)
SELECT jobs.id, step.key, json_extract(step.value, '$.state'),
       coalesce(json_extract(step.value, '$.start_time'), 0),
       coalesce(json_extract(step.value, '$.end_time'), 0),
       coalesce(json_extract(step.value, '$.wait_time'), 0),
       coalesce(json_extract(step.value, '$.info'), '{}'),
       coalesce(json_extract(step.value, '$.attempts'), 0),
       coalesce(json_extract(step.value, '$.retries'), 0),
       coalesce(json_extract(step.value, '$.reattach'), 0)
FROM jobs, json_each(jobs.data, '$.steps') AS step;

ALTER TABLE jobs DROP COLUMN data;
