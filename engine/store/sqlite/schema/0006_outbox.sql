-- 0006: the outbox of job-end notifications (SPEC §11), written in the transaction that
-- stores the job's final state and emptied by the sender (engine/ops/notifier.py).

-- No foreign key to jobs: a notification still goes out when its job was dropped or swept.
-- A delivered notification is deleted; one given up keeps next_attempt NULL and its error.
CREATE TABLE notification_outbox (
    event_id     TEXT    NOT NULL PRIMARY KEY,  -- the same on every retry
    job_id       TEXT    NOT NULL,
    created      INTEGER NOT NULL,              -- epoch ms: the job's end
    payload      TEXT    NOT NULL,              -- the JSON body, as POSTed
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_attempt INTEGER,                       -- epoch ms; NULL = given up
    last_error   TEXT
);
-- The sender asks for due notifications, earliest first.
CREATE INDEX notification_outbox_due ON notification_outbox (next_attempt)
    WHERE next_attempt IS NOT NULL;
