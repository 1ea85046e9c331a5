-- 0004: the notification outbox and the schedules (SPEC §11), as SQLite's 0006 and 0007.
-- Never edit once shipped.

-- No foreign key to jobs: a notification still goes out when its job was dropped or swept.
-- A delivered notification is deleted; one given up keeps next_attempt NULL and its error.
CREATE TABLE notification_outbox (
    event_id     TEXT   NOT NULL PRIMARY KEY,
    job_id       TEXT   NOT NULL,
    created      BIGINT NOT NULL,
    payload      TEXT   NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_attempt BIGINT,
    last_error   TEXT
);
CREATE INDEX notification_outbox_due ON notification_outbox (next_attempt)
    WHERE next_attempt IS NOT NULL;

CREATE TABLE schedules (
    name    TEXT    NOT NULL PRIMARY KEY,
    version INTEGER NOT NULL,
    data    TEXT    NOT NULL
);
