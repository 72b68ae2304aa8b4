"""A real ``dagster dev`` (webserver + daemon) on a free loopback port, driven over GraphQL.

The GraphQL documents are the ones the Dagster 1.13 UI sends (``LaunchPartitionBackfill`` from
``ui-core/src/instance/backfill/BackfillUtils.tsx``, its parameters from
``LaunchAssetChoosePartitionsDialog.tsx``), so a backfill launched here is one launched from the
asset graph's *Materialize* dialog.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from liqheat_pipeline_tests.helpers.api_server import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
# The project's instance settings (one run at a time, telemetry off), copied into a test home.
PROJECT_DAGSTER_YAML = REPO_ROOT / "dagster_home" / "dagster.yaml"
RUN_QUEUE_POLL = "run_queue:\n  dequeue_interval_seconds: 1\n"
LOCATION_NAME = "liqheat_pipeline"
START_TIMEOUT_SECONDS = 120.0
STOP_TIMEOUT_SECONDS = 30.0
# A backfill finishes within a few ticks of the backfill daemon, which ticks every 30 s (fixed in
# Dagster 1.13, not an instance setting).
BACKFILL_TIMEOUT_SECONDS = 240.0
POLL_SECONDS = 1.0
# Statuses after which a backfill does nothing more.
FINAL_BACKFILL_STATUSES = {
    "COMPLETED",
    "COMPLETED_SUCCESS",
    "COMPLETED_FAILED",
    "FAILED",
    "CANCELED",
}
# The tag every launch from the UI carries (ui-core/src/launchpad/uiExecutionTags.tsx).
UI_EXECUTION_TAGS = [{"key": "dagster/from_ui", "value": "true"}]

LAUNCH_PARTITION_BACKFILL = """
mutation LaunchPartitionBackfill($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PartitionSetNotFoundError { message }
    ... on PartitionKeysNotFoundError { message }
    ... on InvalidStepError { invalidStepKey }
    ... on InvalidOutputError { stepKey invalidOutputName }
    ... on UnauthorizedError { message }
    ... on PipelineNotFoundError { message }
    ... on RunConflict { message }
    ... on ConflictingExecutionParamsError { message }
    ... on PresetNotFoundError { message }
    ... on RunConfigValidationInvalid { pipelineName errors { message path reason } }
    ... on PythonError { message stack }
  }
}
"""

BACKFILL = """
query Backfill($backfillId: String!) {
  partitionBackfillOrError(backfillId: $backfillId) {
    __typename
    ... on PartitionBackfill {
      id
      status
      partitionNames
      error { message }
      assetBackfillData {
        assetBackfillStatuses {
          ... on AssetPartitionsStatusCounts { assetKey { path } numPartitionsTargeted }
        }
      }
      runs { runId status tags { key value } }
    }
    ... on PythonError { message }
  }
}
"""

TARGETED_PARTITIONS = """
query Targeted($backfillId: String!, $assetKey: AssetKeyInput!) {
  partitionBackfillOrError(backfillId: $backfillId) {
    ... on PartitionBackfill {
      partitionsTargetedForAssetKey(assetKey: $assetKey) { ranges { start end } partitionKeys }
    }
  }
}
"""

CANCEL_BACKFILL = """
mutation Cancel($backfillId: String!) {
  cancelPartitionBackfill(backfillId: $backfillId) {
    __typename
    ... on PythonError { message }
  }
}
"""

WORKSPACE = """
{
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError { __typename ... on PythonError { message } }
      }
    }
  }
}
"""

GROUP_ASSETS = """
query Group($group: AssetGroupSelector!) {
  assetNodes(group: $group) {
    assetKey { path }
    assetChecksOrError { ... on AssetChecks { checks { name } } }
  }
}
"""

CHECK_EXECUTIONS = """
query Executions($assetKey: AssetKeyInput!, $checkName: String!) {
  assetCheckExecutions(assetKey: $assetKey, checkName: $checkName, limit: 100) {
    runId
    status
    partition
    evaluation { success partition }
  }
}
"""

AssetPath = tuple[str, ...]
T = TypeVar("T")


class GraphQLError(AssertionError):
    """The server answered with GraphQL errors (or not with JSON)."""


@dataclass(frozen=True)
class DagsterDev:
    base_url: str
    log_path: Path

    def graphql(self, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """POST one GraphQL document; its ``data``, or GraphQLError with the server's errors."""
        body = json.dumps({"query": query, "variables": dict(variables or {})}).encode()
        request = urllib.request.Request(
            f"{self.base_url}/graphql", data=body, headers={"Content-Type": "application/json"}
        )
        try:
            with _NO_PROXY.open(request, timeout=60) as response:
                answer = json.load(response)
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")
            raise GraphQLError(f"HTTP {error.code}: {detail}") from error
        except json.JSONDecodeError as error:
            raise GraphQLError(f"not a JSON answer: {error}") from error
        if answer.get("errors"):
            raise GraphQLError(json.dumps(answer["errors"], indent=1))
        return answer["data"]

    def log_tail(self, characters: int = 8000) -> str:
        """The end of the webserver's and daemon's combined output (for failure messages)."""
        text = self.log_path.read_text(errors="replace")
        return text[-characters:]

    # --- what the asset graph shows -------------------------------------------------------

    def group_checks(self, group: str) -> dict[AssetPath, list[str]]:
        """Every asset of ``group`` and the names of its checks."""
        selector = {
            "groupName": group,
            "repositoryName": "__repository__",
            "repositoryLocationName": LOCATION_NAME,
        }
        nodes = self.graphql(GROUP_ASSETS, {"group": selector})["assetNodes"]
        return {
            tuple(node["assetKey"]["path"]): [
                check["name"] for check in node["assetChecksOrError"].get("checks", [])
            ]
            for node in nodes
        }

    def check_executions(self, asset: AssetPath, check_name: str) -> list[dict[str, Any]]:
        """The recorded executions of one check (newest first), each with its partition."""
        variables = {"assetKey": {"path": list(asset)}, "checkName": check_name}
        return self.graphql(CHECK_EXECUTIONS, variables)["assetCheckExecutions"]

    # --- backfills, as the UI launches them ----------------------------------------------

    def launch_backfill(self, partitions: Sequence[str], assets: Sequence[AssetPath]) -> str:
        """Launch a partition backfill of ``assets`` exactly as the Materialize dialog does."""
        params = {
            "tags": UI_EXECUTION_TAGS,
            "assetSelection": [{"path": list(path)} for path in assets],
            "partitionNames": list(partitions),
            "fromFailure": False,
        }
        result = self.graphql(LAUNCH_PARTITION_BACKFILL, {"backfillParams": params})
        launched = result["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", (
            f"launchPartitionBackfill of {list(partitions)} was refused:\n"
            + json.dumps(launched, indent=1)
        )
        return launched["backfillId"]

    def backfill(self, backfill_id: str) -> dict[str, Any]:
        found = self.graphql(BACKFILL, {"backfillId": backfill_id})["partitionBackfillOrError"]
        assert found["__typename"] == "PartitionBackfill", json.dumps(found, indent=1)
        return found

    def targeted_partitions(self, backfill_id: str, asset: AssetPath) -> dict[str, Any] | None:
        """The partitions the backfill targets for ``asset``: ``{ranges, partitionKeys}``."""
        variables = {"backfillId": backfill_id, "assetKey": {"path": list(asset)}}
        found = self.graphql(TARGETED_PARTITIONS, variables)["partitionBackfillOrError"]
        return found["partitionsTargetedForAssetKey"]

    def wait_for_backfill(
        self, backfill_id: str, timeout: float = BACKFILL_TIMEOUT_SECONDS
    ) -> dict[str, Any]:
        """The backfill once its status is final (fails after ``timeout`` with the log)."""
        return _poll(
            lambda: self.backfill(backfill_id),
            lambda found: found["status"] in FINAL_BACKFILL_STATUSES,
            timeout,
            lambda last: (
                f"backfill {backfill_id} not finished within {timeout:.0f} s: {last}\n"
                f"dagster dev output (end):\n{self.log_tail()}"
            ),
        )

    def cancel_backfill(self, backfill_id: str) -> None:
        result = self.graphql(CANCEL_BACKFILL, {"backfillId": backfill_id})
        cancelled = result["cancelPartitionBackfill"]
        assert cancelled["__typename"] == "CancelBackfillSuccess", json.dumps(cancelled)


# Loopback only: never through a proxy from the environment.
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def write_dagster_home(home: Path) -> Path:
    """A fresh DAGSTER_HOME with the project's instance settings, its run queue polled every
    second instead of every 5 s (only sooner starts: still one run at a time)."""
    home.mkdir(parents=True, exist_ok=True)
    settings = PROJECT_DAGSTER_YAML.read_text()
    (home / "dagster.yaml").write_text(f"{settings}\n{RUN_QUEUE_POLL}")
    return home


@contextmanager
def running_dagster_dev(env: Mapping[str, str], log_path: Path) -> Iterator[DagsterDev]:
    """Run ``dg dev`` from the repository root in the project's virtual environment (as
    ``make dev`` does) with ``env``, until its code location has loaded; stop its whole process
    group afterwards."""
    port = free_port()
    dg = Path(sys.executable).with_name("dg")
    command = [str(dg), "dev", "--host", "127.0.0.1", "--port", str(port)]
    env = {**env, "VIRTUAL_ENV": str(Path(sys.executable).parent.parent)}
    # Output to a file: an unread pipe would fill up and stall the processes.
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own process group: the webserver, daemon, code servers and run workers are
            # stopped together. Default signal handling: a parent started in the background
            # may ignore SIGINT, and dagster dev maps SIGTERM onto the SIGINT handler.
            start_new_session=True,
            preexec_fn=_default_interrupt_handling,
        )
        dev = DagsterDev(f"http://127.0.0.1:{port}", log_path)
        try:
            _wait_until_loaded(dev, process)
            yield dev
        finally:
            _stop_process_group(process)


def _default_interrupt_handling() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _wait_until_loaded(dev: DagsterDev, process: subprocess.Popen) -> None:
    """Wait until the webserver answers GraphQL and the code location has loaded."""

    def location_state() -> tuple[str, str] | None:
        if process.poll() is not None:
            raise AssertionError(
                f"dagster dev exited early (code {process.returncode}):\n{dev.log_tail()}"
            )
        try:
            workspace = dev.graphql(WORKSPACE)["workspaceOrError"]
        except (OSError, GraphQLError):  # not listening yet, or still starting
            return None
        for entry in workspace.get("locationEntries", []):
            if entry["name"] == LOCATION_NAME and entry["locationOrLoadError"]:
                loaded = entry["locationOrLoadError"]
                return loaded["__typename"], loaded.get("message", "")
        return None

    state = _poll(
        location_state,
        lambda found: found is not None,
        START_TIMEOUT_SECONDS,
        lambda _: (
            f"dagster dev did not load {LOCATION_NAME} on {dev.base_url} within "
            f"{START_TIMEOUT_SECONDS:.0f} s; its output:\n{dev.log_tail()}"
        ),
    )
    typename, message = state
    assert typename == "RepositoryLocation", f"{LOCATION_NAME} failed to load: {message}"


def _stop_process_group(process: subprocess.Popen) -> None:
    """SIGTERM to the group (dagster dev shuts its services down), then SIGKILL what is left."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _poll(
    read: Callable[[], T],
    done: Callable[[T], bool],
    timeout: float,
    message: Callable[[T | None], str],
) -> T:
    """``read()`` every POLL_SECONDS until ``done`` holds; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = read()
        if done(last):
            return last
        time.sleep(POLL_SECONDS)
    raise AssertionError(message(last))
