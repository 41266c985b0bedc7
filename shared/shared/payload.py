"""RunPod's payload limits: measure a job's result as the SDK posts it; over the limit, upload its files.

RunPod refuses results over its payload limit: 10 MB for a job submitted with ``/run``, 20 MB with
``/runsync``. A worker cannot tell which of the two a job came through, so the limit defaults to the
one that is safe for both (10 MB) and ``MAX_RESPONSE_BYTES`` raises or lowers it (set 20000000 on an
endpoint that is only ever called with ``/runsync``).

A result over the limit takes one of two paths, decided here for every worker that returns files:

- a bucket is known: every file goes through the runpod SDK's bucket upload and the result carries
  presigned URLs (valid 7 days, the SDK's choice) instead. The bucket is the job's own ``s3Config``
  when the request carried one (RunPod hands it to the worker in the job: docs, "Send API requests",
  "S3-compatible storage"; fields as in the JS and Go SDKs: ``accessId``, ``accessSecret``,
  ``bucketName``, ``endpointUrl``, optional ``objectPath`` used as the key prefix instead of the job
  id), else the endpoint's (``BUCKET_ENDPOINT_URL``, ``BUCKET_ACCESS_KEY_ID``,
  ``BUCKET_SECRET_ACCESS_KEY``, optional ``BUCKET_NAME``);
- no bucket: OUTPUT_TOO_LARGE, whose message names the knobs that make the job fit; a bucket that refuses
  the upload or cannot be reached: UPLOAD_FAILED (retryable).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared import settings
from shared.errors import BadInput, FieldProblem, OutputTooLarge, UploadFailed

log = logging.getLogger(__name__)

#: RunPod's limit for results of jobs submitted with /run (and the default here: safe for both).
RUN_LIMIT_BYTES = 10_000_000
#: RunPod's limit for results of jobs submitted with /runsync.
RUNSYNC_LIMIT_BYTES = 20_000_000
LIMIT_ENV = "MAX_RESPONSE_BYTES"
BUCKET_ENV = ("BUCKET_ENDPOINT_URL", "BUCKET_ACCESS_KEY_ID", "BUCKET_SECRET_ACCESS_KEY")
BUCKET_NAME_ENV = "BUCKET_NAME"


def response_limit() -> int:
    """The result size limit in bytes: ``MAX_RESPONSE_BYTES``, else RunPod's /run limit."""
    return settings.number(LIMIT_ENV, RUN_LIMIT_BYTES, minimum=1, maximum=RUNSYNC_LIMIT_BYTES)


def response_size(output: object) -> int:
    """Bytes of the body the runpod SDK posts for this handler result (it serialises exactly so)."""
    return len(json.dumps({"output": output}, ensure_ascii=False).encode("utf-8"))


@dataclass(frozen=True)
class OutputFile:
    """One file of a result: inlined as base64 when the result fits, else uploaded."""

    name: str  #: file name, unique within the job (``0.png``)
    data: bytes
    mime: str


@dataclass(frozen=True)
class FileRef:
    """Where a client finds one file: ``base64`` text (a data URI if asked) or a bucket ``url``."""

    base64: str | None = None
    url: str | None = None


class S3Config(BaseModel):
    """A job's ``s3Config``, as RunPod's clients send it (JS SDK ``S3Config``, Go SDK ``S3Config``)."""

    model_config = ConfigDict(extra="ignore")

    accessId: str = Field(min_length=1)
    accessSecret: str = Field(min_length=1)
    bucketName: str = Field(min_length=1)
    endpointUrl: str = Field(min_length=1)
    objectPath: str | None = None

    @field_validator("endpointUrl")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value


@dataclass(frozen=True)
class Bucket:
    """An S3-compatible bucket the SDK uploads to (credentials from the environment or the job, never logged)."""

    endpoint_url: str
    access_key_id: str = field(repr=False)
    secret_access_key: str = field(repr=False)
    name: str | None = None
    #: Key prefix of the uploads; the job id when None.
    prefix: str | None = None

    @classmethod
    def from_job(cls, job: dict[str, Any]) -> Bucket | None:
        """The bucket of the job's ``s3Config``, None when it has none; BadInput naming each bad field (never
        echoing a value: they are credentials)."""
        config = job.get("s3Config")
        if config is None:
            return None
        if not isinstance(config, dict):
            raise BadInput.field("s3Config", f"must be a JSON object, got {type(config).__name__}")
        try:
            parsed = S3Config.model_validate(config)
        except ValidationError as exc:
            raise BadInput([
                FieldProblem("s3Config." + ".".join(str(part) for part in err["loc"]),
                             err["msg"].removeprefix("Value error, "))
                for err in exc.errors(include_url=False)
            ]) from None
        return cls(parsed.endpointUrl, parsed.accessId, parsed.accessSecret, name=parsed.bucketName,
                   prefix=parsed.objectPath.strip("/") if parsed.objectPath else None)

    @classmethod
    def from_env(cls) -> Bucket | None:
        """The configured bucket, or None when any of the three BUCKET_* variables is unset."""
        values = [os.environ.get(key, "").strip() for key in BUCKET_ENV]
        if not all(values):
            return None
        return cls(*values, name=os.environ.get(BUCKET_NAME_ENV, "").strip() or None)

    def upload(self, job_id: str, file: OutputFile) -> str:
        """Upload under ``<prefix or job id>/<file name>`` with the runpod SDK; return its presigned URL."""
        # Imported here: the SDK module configures logging and pulls boto3 at import.
        from runpod.serverless.utils.rp_upload import upload_in_memory_object

        credentials = {
            "endpointUrl": self.endpoint_url,
            "accessId": self.access_key_id,
            "accessSecret": self.secret_access_key,
        }
        return upload_in_memory_object(
            file.name,
            file.data,
            bucket_creds=credentials,
            bucket_name=self.name or time.strftime("%m-%y"),  # the SDK's own default bucket name
            prefix=self.prefix or job_id,
        )


def deliver(
    job_id: str,
    files: Sequence[OutputFile],
    render: Callable[[list[FileRef]], dict],
    *,
    data_uri: bool = False,
    limit: int | None = None,
    bucket: Bucket | None = None,
) -> dict:
    """The result ``render`` builds from one FileRef per file: inline base64 when the whole result
    fits the limit, else bucket URLs when a bucket is configured, else OutputTooLarge."""
    from shared.encoding import encode_bytes

    limit = response_limit() if limit is None else limit
    inline = render([FileRef(base64=encode_bytes(f.data, f.mime if data_uri else None)) for f in files])
    size = response_size(inline)
    if size <= limit:
        return inline
    if bucket is None:
        raise too_large(size, limit)
    uploaded = render([FileRef(url=_upload(bucket, job_id, f)) for f in files])
    if response_size(uploaded) > limit:  # only a tiny limit gets here: URLs are short
        raise too_large(response_size(uploaded), limit)
    return uploaded


def _upload(bucket: Bucket, job_id: str, file: OutputFile) -> str:
    try:
        return bucket.upload(job_id, file)
    except Exception as exc:  # any boto/network failure: the client needs a clear reason, the log the detail
        log.exception("uploading %s of job %s to %s failed", file.name, job_id, bucket.endpoint_url)
        raise UploadFailed(
            f"the result is over the response limit and uploading it to the bucket at {bucket.endpoint_url} "
            f"failed ({type(exc).__name__}); check the BUCKET_* settings and that the bucket exists"
        ) from None


def too_large(size: int, limit: int) -> OutputTooLarge:
    return OutputTooLarge(
        f"the result is {size} bytes, over the response limit of {limit} bytes ({LIMIT_ENV}; RunPod allows "
        f"{RUN_LIMIT_BYTES} for /run and {RUNSYNC_LIMIT_BYTES} for /runsync). Configure a bucket "
        f"({', '.join(BUCKET_ENV)}, optional {BUCKET_NAME_ENV}) to receive URLs instead, raise {LIMIT_ENV} "
        f"up to {RUNSYNC_LIMIT_BYTES} if this endpoint is only called with /runsync, or ask for fewer or "
        "smaller files or a compressed format."
    )
