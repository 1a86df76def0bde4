"""MLflow: one MLflow run per run directory, in the tracking store the user already set.

The store is MLflow's own choice (``MLFLOW_TRACKING_URI``, else MLflow's default). A run is
tagged ``vaelab.run_dir`` with the absolute run directory; that tag is how a resumed run finds
and continues its MLflow run and how ``vaelab evaluate`` adds test metrics to it. A study is a
parent run (tagged ``vaelab.study_dir``) with one nested child run per member.

Parameters are the resolved config, metrics are the metrics.jsonl records at ``step=epoch``,
picture grids are step-tagged images, and ``finish`` uploads the run directory's files.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vaelab.trackers.base import (
    DEFAULT_EXPERIMENT,
    Requirement,
    TrackedRun,
    TrackerOptions,
    flat_params,
    register_tracker,
)

if TYPE_CHECKING:
    import numpy as np
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

__all__ = ["HTTP_DEFAULTS", "RUN_DIR_TAG", "STUDY_DIR_TAG", "MlflowTracker", "find_run"]

RUN_DIR_TAG = "vaelab.run_dir"
STUDY_DIR_TAG = "vaelab.study_dir"
_PARENT_TAG = "mlflow.parentRunId"  # what makes MLflow show a run nested under another

# MLflow retries an HTTP request 7 times with doubling backoff and a 120 s timeout (minutes
# per call when the server is gone). For vaelab's calls the defaults below apply instead,
# each only while the user has not set that variable: under 20 s at worst (3 tries of 5 s
# and about 3 s of backoff) before the guard switches the tracker off.
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
}
_PARAMS_PER_BATCH = 100  # MLflow's limit per log_batch
_MAX_PARAM_LENGTH = 6000  # MLflow rejects longer parameter values
_RETRY_LOGGER = "urllib3.connectionpool"


class _DropRetryNotices(logging.Filter):
    # urllib3 warns once per retry; the guard's single warning already names the failure.
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Retrying")


@contextlib.contextmanager
def _short_http() -> Iterator[None]:
    """Around one tracker call: vaelab's HTTP defaults where the user set none, no retry chatter."""
    # MLflow reads these variables on every request, so setting them around a call is enough.
    added = [name for name in HTTP_DEFAULTS if name not in os.environ]
    os.environ.update({name: HTTP_DEFAULTS[name] for name in added})
    quiet = _DropRetryNotices()
    logging.getLogger(_RETRY_LOGGER).addFilter(quiet)
    try:
        yield
    finally:
        logging.getLogger(_RETRY_LOGGER).removeFilter(quiet)
        for name in added:
            os.environ.pop(name, None)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _tag_filter(key: str, value: str) -> str:
    # MLflow's filter syntax has no escapes: quote with a mark the value lacks, or fall back to
    # a prefix match (candidates are compared exactly by the caller).
    for quote in ("'", '"'):
        if quote not in value:
            return f"tags.`{key}` = {quote}{value}{quote}"
    prefix = value[: min(value.index("'"), value.index('"'))]
    return f"tags.`{key}` LIKE '{prefix}%'"


def find_run(client: MlflowClient, experiment_id: str, key: str, value: str) -> Run | None:
    """The most recently started run of the experiment whose tag ``key`` equals ``value``."""
    runs = client.search_runs(
        [experiment_id], _tag_filter(key, value), order_by=["attributes.start_time DESC"]
    )
    return next((run for run in runs if run.data.tags.get(key) == value), None)


def _params(config: Mapping[str, Any], skip: Mapping[str, str]) -> list[tuple[str, str]]:
    return [
        (key, str(value)[:_MAX_PARAM_LENGTH])
        for key, value in flat_params(config).items()
        if key not in skip
    ]


@register_tracker("mlflow", Requirement("mlflow", "MLflow", "mlflow"))
class MlflowTracker:
    """Logs a run to MLflow; every call is bounded in time when the server is unreachable."""

    def __init__(self, options: TrackerOptions | None = None) -> None:
        self.experiment = (options or TrackerOptions()).experiment or DEFAULT_EXPERIMENT
        self.run_id: str | None = None
        self._client: MlflowClient | None = None

    def _connect(self) -> MlflowClient:
        if self._client is None:
            from mlflow.tracking import MlflowClient

            self._client = MlflowClient()
        return self._client

    def _find_experiment(self) -> str | None:
        found = self._connect().get_experiment_by_name(self.experiment)
        return None if found is None else str(found.experiment_id)

    def _ensure_experiment(self) -> str:
        from mlflow.exceptions import MlflowException

        found = self._find_experiment()
        if found is not None:
            return found
        try:
            return str(self._connect().create_experiment(self.experiment))
        except MlflowException:  # another process created it first
            found = self._find_experiment()
            if found is None:
                raise
            return found

    def _log_params(self, run_id: str, config: Mapping[str, Any], skip: Mapping[str, str]) -> None:
        from mlflow.entities import Param

        params = [Param(key, value) for key, value in _params(config, skip)]
        for first in range(0, len(params), _PARAMS_PER_BATCH):
            self._connect().log_batch(run_id, params=params[first : first + _PARAMS_PER_BATCH])

    def _open_run(
        self,
        tag: str,
        directory: Path,
        name: str,
        config: Mapping[str, Any],
        reuse: bool,
        parent: str | None = None,
    ) -> str:
        """Reuse the run tagged with ``directory`` (when asked and found) or create one."""
        client = self._connect()
        experiment_id = self._ensure_experiment()
        path = str(directory.resolve())
        existing = find_run(client, experiment_id, tag, path) if reuse else None
        if existing is not None:
            run_id = str(existing.info.run_id)
            client.update_run(run_id, status="RUNNING")
            # MLflow parameters cannot change: keep the first values and add new keys only;
            # config.json, uploaded at finish, holds the config of the latest start.
            self._log_params(run_id, config, skip=existing.data.params)
            return run_id
        tags = {tag: path} | ({_PARENT_TAG: parent} if parent else {})
        run_id = str(client.create_run(experiment_id, tags=tags, run_name=name).info.run_id)
        self._log_params(run_id, config, skip={})
        return run_id

    def _run(self) -> str:
        if self.run_id is None:
            raise RuntimeError("MlflowTracker.start was not called")
        return self.run_id

    def start(self, run: TrackedRun) -> None:
        with _short_http():
            self.run_id = self._open_run(
                RUN_DIR_TAG,
                run.run_dir,
                run.name,
                run.config,
                reuse=run.resumed,
                parent=run.parent,
            )

    def _log_metrics(self, run_id: str, metrics: Mapping[str, float], step: int) -> None:
        from mlflow.entities import Metric

        stamp = _now_ms()
        batch = [Metric(key, float(value), stamp, step) for key, value in metrics.items()]
        self._connect().log_batch(run_id, metrics=batch)

    def log_epoch(
        self, epoch: int, record: Mapping[str, float], images: Mapping[str, np.ndarray] | None
    ) -> None:
        run_id = self._run()
        with _short_http():
            metrics = {key: value for key, value in record.items() if key != "epoch"}
            self._log_metrics(run_id, metrics, step=epoch)
            for name, grid in (images or {}).items():
                self._connect().log_image(run_id, grid, key=name, step=epoch)

    def finish(self, summary: Mapping[str, float], artifacts: Sequence[Path]) -> None:
        run_id = self._run()
        with _short_http():
            client = self._connect()
            self._log_metrics(run_id, summary, step=0)
            for path in artifacts:
                if Path(path).is_file():  # pictures may be switched off
                    client.log_artifact(run_id, str(path))
            client.set_terminated(run_id, status="FINISHED")
        self.run_id = None

    def close(self) -> None:
        if self.run_id is not None:
            run_id, self.run_id = self.run_id, None
            with _short_http():
                # KILLED, not FINISHED: MLflow's status for a run that stopped early.
                self._connect().set_terminated(run_id, status="KILLED")

    def start_study(self, study_dir: Path, config: dict[str, Any]) -> str | None:
        with _short_http():
            return self._open_run(STUDY_DIR_TAG, study_dir, study_dir.name, config, reuse=True)

    def finish_study(self, handle: str, completed: bool = True) -> None:
        with _short_http():
            self._connect().set_terminated(handle, status="FINISHED" if completed else "KILLED")

    def log_evaluation(self, run_dir: Path, metrics: Mapping[str, float]) -> None:
        path = str(run_dir.resolve())
        with _short_http():
            client = self._connect()
            experiment_id = self._find_experiment()
            found = (
                None
                if experiment_id is None
                else find_run(client, experiment_id, RUN_DIR_TAG, path)
            )
            if found is None:
                raise LookupError(
                    f"no run in MLflow experiment {self.experiment!r} has tag "
                    f"{RUN_DIR_TAG}={path}; train it with --tracker mlflow first"
                )
            self._log_metrics(str(found.info.run_id), metrics, step=0)
