-- 0007: scheduled builds (SPEC §11). The whole schedule is the JSON in `data`
-- (engine/store/sqlite/ops.py); `version` is its compare-and-set.
CREATE TABLE schedules (
    name    TEXT    NOT NULL PRIMARY KEY,
    version INTEGER NOT NULL,
    data    TEXT    NOT NULL
);
