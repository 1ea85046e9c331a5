"""Examples of the request and response bodies, put into the OpenAPI document (``/docs`` shows
them). ``tests/api/test_openapi_examples.py`` validates each against its model, so they cannot
drift from the shapes the server answers with."""

from __future__ import annotations

from typing import Any, Final

from engine.core.segments import BUILD_TYPES
from engine.core.states import (
    STATUS_CODES,
    CubeStatus,
    Operation,
    SegmentStatus,
    State,
    StreamingAction,
)

BUILD: Final = BUILD_TYPES[0]

JOB_ID: Final = "fd328e06-6bb2-4916-9afb-d1f4599900e7"
MODEL: Final = "affa9660-7c33-570e-9a04-523e8d95c763"
_STEP: Final = {
    "interruptCmd": None,
    "id": f"{JOB_ID}-02",
    "name": "Extract Fact Table Distinct Columns",
    "sequence_id": 2,
    "exec_cmd": "hadoop jar kylin-job.jar org.apache.kylin.engine.mr.steps.FactDistinctColumnsJob",
    "interrupt_cmd": None,
    "exec_start_time": 1795434818011,
    "exec_end_time": 0,
    "exec_wait_time": 1200,
    "step_status": State.RUNNING.rest_name,
    "cmd_type": "SHELL_CMD_HADOOP",
    "info": {
        "mr_job_id": "job_1795434817511_0001",
        "yarn_application_id": "application_1795434817511_0001",
    },
    "run_async": False,
}

#: schema name -> one example body
EXAMPLES: Final[dict[str, Any]] = {
    "BuildRequest": {"startTime": 1704067200000, "endTime": 1704153600000, "buildType": BUILD},
    "Build2Request": {"sourceOffsetStart": 0, "sourceOffsetEnd": 1000, "buildType": BUILD},
    "JobStatusRequest": {
        "action": str(Operation.RESUME),
        "job_ids": [JOB_ID],
        "project": "learn_kylin",
    },
    "StreamingStatusRequest": {
        "project": "learn_kylin",
        "action": str(StreamingAction.START),
        "job_ids": [f"{MODEL}_build"],
    },
    "ScheduleRequest": {
        "name": "sales_hourly",
        "cube": "kylin_sales_cube",
        "cron": "0 * * * *",
        "build_type": BUILD,
    },
    "StreamingParamsRequest": {
        "job_id": f"{MODEL}_build",
        "project": "learn_kylin",
        "params": {"kylin.streaming.duration": "10"},
    },
    "JobInstance": {
        "uuid": JOB_ID,
        "last_modified": 1795434818011,
        "version": "4.0.0.0",
        "name": "BUILD CUBE - kylin_sales_cube - 20240101000000_20240102000000 - "
        "2026-11-23 11:53:37 UTC",
        "projectName": "learn_kylin",
        "type": BUILD,
        "duration": 1,
        "related_cube": "kylin_sales_cube",
        "display_cube_name": "kylin_sales_cube",
        "related_segment": "981e22ee-f94a-4ca1-9b19-d5b4df01b326",
        "related_segment_name": "20240101000000_20240102000000",
        "exec_start_time": 1795434817611,
        "exec_end_time": 0,
        "exec_interrupt_time": 0,
        "mr_waiting": 1,
        "steps": [_STEP],
        "submitter": "ADMIN",
        "job_status": State.RUNNING.rest_name,
        "build_instance": "16758@myhost",
        "progress": 11.1,
    },
    "StepOutputBody": {
        "jobId": JOB_ID,
        "stepId": f"{JOB_ID}-02",
        "cmd_output": "INFO mapreduce.JobSubmitter: number of splits:1\n",
    },
    "Overview": dict(zip(STATUS_CODES, (0, 1, 2, 14, 1, 0, 0), strict=True)),
    "Envelope": {"code": "000", "data": "", "msg": ""},
    "ErrorBody": {
        "code": "999",
        "data": None,
        "msg": "Cannot find job 'nope'",
        "exception": "Cannot find job 'nope'",
        "url": "http://127.0.0.1:7070/kylin/api/jobs/nope/resume",
        "error_code": "KE-010032219",
    },
    "Authentication": {
        "userDetails": {"username": "ADMIN", "authorities": [{"authority": "ROLE_ADMIN"}]}
    },
    "CubeBody": {
        "uuid": "2fbca32a-a33e-4b69-83dd-0bb8b1f8c53b",
        "name": "kylin_sales_cube",
        "project": "learn_kylin",
        "descriptor": "kylin_sales_cube",
        "status": str(CubeStatus.READY),
        "segments": [
            {
                "uuid": "981e22ee-f94a-4ca1-9b19-d5b4df01b326",
                "name": "20240101000000_20240102000000",
                "status": str(SegmentStatus.READY),
                "date_range_start": 1704067200000,
                "date_range_end": 1704153600000,
            }
        ],
    },
    "StreamingRecordsEnvelope": {
        "code": "000",
        "data": [
            {
                "id": 1,
                "job_id": f"{MODEL}_build",
                "project": "learn_kylin",
                "action": str(StreamingAction.START),
                "create_time": 1795439516127,
            }
        ],
        "msg": "",
    },
}


def add_examples(schemas: dict[str, Any]) -> None:
    """Put each example into its component schema (OpenAPI 3.1: JSON Schema ``examples``)."""
    for name, example in EXAMPLES.items():
        if name in schemas:
            schemas[name]["examples"] = [example]
