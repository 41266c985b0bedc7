"""A local stand-in for a RunPod Serverless endpoint: real worker processes, the SDK's real job loop, RunPod's API.

Use::

    from devkit.endpoint import LocalEndpoint
    with LocalEndpoint(workers=["progress-demo"], env={"progress-demo": {"MAX_CONCURRENCY": "2"}},
                       scaling={"progress-demo": {"max_workers": 2}}, port=0) as ep:
        ep.wait_ready("progress-demo", timeout=120)
        runpod.endpoint_url_base = ep.base_url + "/v2"          # the official client works against it
        runpod.Endpoint("progress-demo").run_sync({"steps": 3})

or ``make dev`` / ``make dev WORKER=progress-demo`` (``python -m devkit.endpoint --worker NAME --port N``).

Modules: `spec` (what runs for an endpoint id), `jobs` (queue and job state machine), `scaling` (when to
start and stop workers), `workers` (process supervision), `worker_api` (what the SDK calls), `client_api`
(RunPod's REST API), `job_request` (the body of /run and /runsync), `openai_api` (OpenAI routes; its
docstring is the worker convention for them), `worker_output` (reading what workers print), `webhooks`,
`server` (LocalEndpoint).

Client paths, RunPod's queue API (docs "Send API requests" and "Operation reference"; the paths and query
parameters runpod-python, runpod/js-sdk and runpod/go-sdk call). The endpoint id is the worker's name; the
key is checked when ``api_key`` is set (``Authorization: Bearer <key>`` or the bare key)::

    POST     /v2/<name>/run                    {"input", "webhook"?, "policy"?, "s3Config"?} -> {"id", "status"}
    POST     /v2/<name>/runsync[?wait=ms]      waits 90 s (wait: 1000..300000), then answers the status to poll
    GET|POST /v2/<name>/status/<id>[?ttl=ms][&wait=ms]
                         {"id", "status", "delayTime", "executionTime", "workerId", "output"|"error"}
    GET|POST /v2/<name>/status-sync/<id>[?wait=ms]   /status after waiting for the end (JS and Go SDKs)
    GET|POST /v2/<name>/stream/<id>[?wait=ms]  {"status", "stream": [{"output": chunk}...]}: chunks not handed out yet
    POST     /v2/<name>/cancel/<id>            {"id", "status"}
    POST     /v2/<name>/retry/<id>             a FAILED or TIMED_OUT job queued again: {"id", "status": "IN_QUEUE"}
    GET      /v2/<name>/health                 RunPod's {"jobs", "workers"} + "startupFailure"
    POST     /v2/<name>/purge-queue            {"removed": n, "status": "completed"}
    GET|POST /v2/<name>/openai/v1/...          forwarded as {"openai_route": "/v1/...", "openai_input": body}

Request options: ``policy.executionTimeout`` (ms, 5 s..7 days; the endpoint's execution timeout when
unset), ``policy.ttl`` (ms, 10 s..7 days, default 24 h: the job's whole lifespan from submission; when it
runs out the job is deleted whatever its state, a running one stopped on its worker, and /status answers
404), ``policy.lowPriority`` (taken after every normal job and never the reason a worker starts),
``s3Config`` (handed to the worker in the job as ``job["s3Config"]``; never shown by /status), ``webhook``.
A bad one is a 400 naming the field.

Worker side: each worker process is started as ``python -m <package>`` (the image's start command) with
PYTHONPATH=workers/<name>, the endpoint.toml [env], MODEL_PATH = the tiny fixture model, and RunPod's
production variables pointed here: RUNPOD_WEBHOOK_GET_JOB (``/_worker/<name>/job-take/$ID``; the SDK derives
``job-take-batch`` and ``job-stop`` from it), RUNPOD_WEBHOOK_POST_OUTPUT (``job-done``), RUNPOD_WEBHOOK_POST_STREAM
(``job-stream``), RUNPOD_WEBHOOK_PING (``ping``), RUNPOD_POD_ID (the worker id), RUNPOD_AI_API_KEY,
RUNPOD_PING_INTERVAL, RUNPOD_ENDPOINT_ID, and RUNPOD_SKIP_AUTO_SYSTEM_CHECKS / RUNPOD_SKIP_GPU_CHECK (no
internet, no GPU here). So the SDK runs its real loop: single and batch takes, results, stream chunks,
progress updates, pings, and job-stop polling for cancels and timeouts.

Lifecycle decisions:

- Scaling: min_workers, max_workers, idle_timeout and execution_timeout come from workers/<name>/endpoint.toml
  (devkit.endpoint_config, as deploy uses them), overridable per instance. A worker is started while jobs
  wait beyond what starting workers will absorb (RunPod's request-count scaler, ratio 1; when workers are
  ready, only once the oldest job has waited 1 s), up to max_workers; an idle worker above min_workers
  stops after idle_timeout (SIGTERM: the SDK drains and exits).
- Cancel and execution timeout: the job becomes CANCELLED / TIMED_OUT at once (TIMED_OUT carries a TIMEOUT
  envelope) and its worker gets the id on its job-stop poll, which cancels the job's task; late results are
  dropped. The stop is re-sent every second for 10 s, because the SDK ignores a stop that arrives before the
  job's task exists.
- A worker whose result carries ``stopPod`` (``refresh_worker``) gets no new job and is told to stop; one
  still running 10 s after SIGTERM is killed.
- Each worker is a container: a worker id and a folder of its own (WORKER_STATE_DIR, its disk). A worker
  whose process exits unasked (crash, kill) is restarted in the same container after 1 s, then 2 s; the third
  exit in a row marks it unhealthy (``workers.unhealthy`` in /health, an error in the log): no more restarts,
  and a new container replaces it by the scaling rule (after a worker that never served, at most one start
  every 5 s). Nothing fails the jobs waiting meanwhile: they stay IN_QUEUE, as on RunPod (see workers.py).
  Each job a dead process held goes back to the head of the queue, keeping its id (``health.jobs.retried``
  counts it); a job lost on its second attempt FAILS with an INTERNAL envelope naming the exit, so a job that
  kills its worker cannot crash workers forever. A retried job's stream restarts: /stream clients may see
  chunks of both attempts.
- A worker whose setup failed in a way no restart fixes (shared.serving) is in its job loop and fails every
  job with NOT_READY, the cause and the fix; the text after shared.serving.STARTUP_FAILURE_MARKER in its
  stderr shows in /health (``startupFailure``) and `wait_ready` raises StartupFailed with it, as it does when
  a worker that never served turns unhealthy. A worker not in its job loop 7 min after its start (RunPod's
  limit) is killed. A worker that starts fine clears ``startupFailure``.
- Pings: the SDK's heartbeat process pings every 1 s here (RUNPOD_PING_INTERVAL); a worker in its job loop
  silent for 10 s (60 s before its first ping) is frozen: killed, unhealthy, replaced, its jobs queued again.
- Worker output is read in chunks, split into lines cut to 16 KiB, the workers' own bound (worker_output,
  shared.logs), and logged.
- Results are kept 30 min after /run jobs end and 1 min after /runsync jobs end, then /status is a 404;
  a job's TTL cuts that short, and so does ``/status/<id>?ttl=<ms>`` (deleted that long after the call).
  /purge-queue cancels the waiting jobs (their status shows CANCELLED) and leaves running ones.
- /retry queues a FAILED or TIMED_OUT job again (same id, input and policy; output, error and stream
  chunks cleared; it counts in ``health.jobs.retried``); any other state is a 400, an expired job a 404.
- Payload limits: /run 10 MB, /runsync and OpenAI routes 20 MB, refused with HTTP 413 and
  ``{"error": "<which limit, how big>"}``. Bad request bodies and query parameters are 400s, a missing or
  wrong key a 401, unknown endpoints or jobs 404s; every error body is ``{"error": "<why>"}``.
- Webhook: when a job with ``webhook`` ends (any final state), its /status body is POSTed there; anything
  but a 200 is tried again 10 s later, 3 tries in all, as RunPod does.
- A job whose handler returns (not yields) shows its output as the one /stream chunk when it completes.
- Worker stdout/stderr lines are logged (logger ``devkit.endpoint.worker_output``) prefixed with the worker id.

How it differs from RunPod: the table "Differences from RunPod" in docs/local-endpoint.md, each row with
its reason.
"""

from devkit.endpoint.server import LocalEndpoint
from devkit.endpoint.spec import WorkerSpec
from devkit.endpoint.workers import StartupFailed

__all__ = ["LocalEndpoint", "StartupFailed", "WorkerSpec"]
