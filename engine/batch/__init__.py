"""Batch jobs at run time: the writer (decision -> durable write -> effects), the scheduler
(slots, priority, step execution, retries) and live step output."""
