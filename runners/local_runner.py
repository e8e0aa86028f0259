"""The FnApiRunner for local multi-process runs, with workers from runners.worker_pool.

    python -m pipelines.ingest ... --profile local --direct_num_workers 2

Same runner, same scheduling; three differences in how worker processes come and go:
- a worker started early by the launcher (worker_pool.prestart) is used when there is one,
  so the first stage does not wait for a fresh Python to import Beam;
- workers run `python -m runners.worker_pool`: their log records reach this process only,
  and are logged here as `runners.worker` records (Beam's harness start-up chatter at DEBUG);
- workers leave without the interpreter's teardown once the harness is done.
launch.execute picks this runner for `--runner FnApiRunner --direct_running_mode
multi_processing`; every other runner and mode is Beam's own.
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading

import grpc
from apache_beam.portability import python_urns
from apache_beam.portability.api import beam_fn_api_pb2, beam_fn_api_pb2_grpc
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.runners.portability.fn_api_runner.worker_handlers import (
    SubprocessSdkWorkerHandler,
    WorkerHandler,
)
from apache_beam.runners.portability.local_job_service import LOGENTRY_TO_LOG_LEVEL_MAP
from apache_beam.utils import thread_pool_executor
from google.protobuf import text_format

from runners import worker_pool

LOCAL_PROCESS_URN = "segscale:env:local_process:v1"
_LOGGER = logging.getLogger("runners.worker")
# Messages Beam's workers log on every local run that tell a local user nothing: harness
# start-up, RunInference's memory probe, WriteToText replacing its own files of a rerun.
_CHATTER = (
    "No semi_persistent_directory found",
    "No session file found",
    "Resource module is not available for current platform",
    "Deleting ",
    "No shards found to finalize",
)


class LocalProcessRunner(FnApiRunner):
    """FnApiRunner whose subprocess workers come from runners.worker_pool."""

    def run_via_runner_api(self, pipeline_proto, options):
        for environment in pipeline_proto.components.environments.values():
            if environment.urn == python_urns.SUBPROCESS_SDK:
                environment.urn = LOCAL_PROCESS_URN
                environment.payload = b""
        try:
            return super().run_via_runner_api(pipeline_proto, options)
        finally:
            worker_pool.release_all()


class WorkerLogRelay(beam_fn_api_pb2_grpc.BeamFnLoggingServicer):
    """Logs the workers' records in this process, at their own level."""

    def Logging(self, log_bundles, context=None):  # noqa: N802  (gRPC method name)
        for bundle in log_bundles:
            for entry in bundle.log_entries:
                level = LOGENTRY_TO_LOG_LEVEL_MAP.get(entry.severity, logging.INFO)
                if entry.message.startswith(_CHATTER):
                    level = logging.DEBUG
                trace = f"\n{entry.trace}" if entry.trace else ""
                _LOGGER.log(level, "%s%s", entry.message, trace)
        return iter([])


class _LocalWorker:
    """One worker process: claimed from the pool or started now; runs until the harness ends."""

    def __init__(self, control_address: str, provision_info, worker_id: str, on_failure):
        self._control_address = control_address
        self._provision_info = provision_info
        self._worker_id = worker_id
        self._on_failure = on_failure

    def run(self):
        from apache_beam.portability.api import endpoints_pb2
        from google.protobuf import json_format

        logs = grpc.server(thread_pool_executor.shared_unbounded_instance())
        beam_fn_api_pb2_grpc.add_BeamFnLoggingServicer_to_server(WorkerLogRelay(), logs)
        port = logs.add_insecure_port("localhost:0")
        logs.start()
        env = {
            "CONTROL_API_SERVICE_DESCRIPTOR": text_format.MessageToString(
                endpoints_pb2.ApiServiceDescriptor(url=self._control_address)
            ),
            "LOGGING_API_SERVICE_DESCRIPTOR": text_format.MessageToString(
                endpoints_pb2.ApiServiceDescriptor(url=f"localhost:{port}")
            ),
            "PIPELINE_OPTIONS": json_format.MessageToJson(
                self._provision_info.provision_info.pipeline_options
            ),
            "WORKER_ID": self._worker_id,
        }
        process = worker_pool.claim()
        try:
            if process is not None:
                worker_pool.hand_over(process, env)
            else:
                process = subprocess.Popen(worker_pool.worker_command(), env={**os.environ, **env})
            if process.wait():
                error = RuntimeError(
                    f"local worker process {self._worker_id} (pid {process.pid}) exited with "
                    f"code {process.returncode}; its own output above says why"
                )
                self._on_failure(error)  # the job fails with this error
        finally:
            if process is not None and process.poll() is None:
                process.kill()
            logs.stop(0)


class LocalProcessWorkerHandler(SubprocessSdkWorkerHandler):
    def start_worker(self):
        self.worker = _LocalWorker(
            self.control_address, self.provision_info, self.worker_id, self._worker_failed
        )
        self.worker_thread = threading.Thread(name="run_worker", target=self.worker.run)
        self.worker_thread.start()

    def _worker_failed(self, error: Exception) -> None:
        """Answers every instruction sent to a dead worker, now and later, with the error, as a
        worker reporting a failure would: Beam's runner would otherwise wait for the answers
        for ever (a worker that cannot start, or that the kernel killed for memory, would hang
        the job)."""
        connection = self.control_conn

        def fail(future):
            future.set(
                beam_fn_api_pb2.InstructionResponse(
                    instruction_id=future.instruction_id, error=str(error)
                )
            )

        push = connection.push

        def push_and_fail(request):
            future = push(request)
            if future is not None:
                fail(future)
            return future

        connection.push = push_and_fail
        for future in list(connection._futures_by_id.values()):
            if not future.is_done():
                fail(future)


WorkerHandler.register_environment(LOCAL_PROCESS_URN, bytes)(LocalProcessWorkerHandler)
