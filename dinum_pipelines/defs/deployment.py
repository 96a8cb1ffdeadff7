"""How the datasets' jobs execute: in the local processes by default, on Celery workers in the
deployment of deploy/celery/ (`DINUM_EXECUTOR=celery`).

On Celery each step is a task on the broker that any worker may take, so each job also gets a
`RetryPolicy`: a step that fails on a worker (a source or the catalog unreachable for a while,
its clean files not readable yet) is tried again, on whichever worker is free. A worker killed
mid-step is not a step failure Dagster sees (dagster-celery reports a lost task as a failed run,
not a failed step): its task, acknowledged only at the end (`task_acks_late`,
`task_reject_on_worker_lost`, deploy/celery/celery.yaml), goes back to the broker and another
worker runs the step again. Without the variable nothing changes: the default executor, no retry policy.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import yaml

EXECUTOR_VAR = "DINUM_EXECUTOR"
CELERY_CONFIG_VAR = "DINUM_CELERY_CONFIG"
# The settings both the runs and the workers read (a checkout's deploy/celery/celery.yaml by default).
DEFAULT_CELERY_CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "celery" / "celery.yaml"

STEP_RETRY_POLICY = dg.RetryPolicy(max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


def on_celery() -> bool:
    executor = os.environ.get(EXECUTOR_VAR, "").strip()
    if executor not in ("", "celery"):
        raise ValueError(f"{EXECUTOR_VAR}={executor!r}: expected 'celery' or nothing (the default executor)")
    return executor == "celery"


def celery_settings() -> dict:
    """The executor's config block of the Celery settings file (`execution: config:`)."""
    path = Path(os.environ.get(CELERY_CONFIG_VAR) or DEFAULT_CELERY_CONFIG)
    if not path.is_file():
        raise FileNotFoundError(f"{EXECUTOR_VAR}=celery needs the Celery settings file: {path} does not exist (set {CELERY_CONFIG_VAR})")
    return yaml.safe_load(path.read_text(encoding="utf-8"))["execution"]["config"]


def dataset_job_options() -> dict:
    """Extra arguments of each dataset's `define_asset_job`: none by default."""
    if not on_celery():
        return {}
    from dagster_celery import celery_executor

    return {"executor_def": celery_executor.configured(celery_settings()), "op_retry_policy": STEP_RETRY_POLICY}
