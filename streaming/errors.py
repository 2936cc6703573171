"""One exception tree for the whole service.

    StreamscribeError                 code, status, param
    ├── ConfigError                   bad server configuration (startup)
    ├── ModelError
    │   ├── ModelNotFound             model_not_found (404)
    │   └── ModelIntegrityError       model_integrity_error (500)
    ├── AuthError                     invalid_api_key (401)
    ├── InvalidRequest                invalid_request_error (400)
    │   ├── InvalidParameter          invalid_parameter, names the parameter
    │   ├── AudioDecodeError          audio_decode_error / empty_audio
    │   ├── AudioTooLong              audio_too_long
    │   ├── FileTooLarge              file_too_large (413 upload, 400 URL)
    │   └── UrlRefused                url_not_allowed / url_fetch_failed: URL input refused
    ├── UploadTimeout                 upload_timeout (408): the upload stalled
    ├── ProtocolError                 a malformed streaming message (the stream goes on)
    ├── Overloaded                    server_overloaded (503); server_shutting_down while draining
    └── TranscriptionError            the backend failed (500 / 502 for remote)

Every error carries the machine-readable `code` that goes on the wire, the HTTP `status`
used by the REST API and the upgrade rejection, and the `param` it concerns (or None).
"""

from __future__ import annotations

import json
from typing import Any


class StreamscribeError(Exception):
    code = "internal_error"
    status = 500
    type = "server_error"

    def __init__(self, message: str, *, code: str | None = None, param: str | None = None,
                 status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.param = param

    def to_openai(self) -> dict[str, Any]:
        """The OpenAI error body: {"error": {"message", "type", "param", "code"}}."""
        return {"error": {"message": self.message, "type": self.type,
                          "param": self.param, "code": self.code}}

    @classmethod
    def from_openai(cls, body: str, status: int, prefix: str = "") -> StreamscribeError | None:
        """The error an OpenAI error body describes, as this class (with `prefix` before its
        message); None if `body` is not one."""
        try:
            error = json.loads(body)["error"]
            return cls(prefix + str(error["message"]), code=error.get("code"),
                       param=error.get("param"), status=status)
        except (ValueError, KeyError, TypeError):
            return None


class ConfigError(StreamscribeError):
    code = "config_error"


class ModelError(StreamscribeError):
    code = "model_error"


class ModelNotFound(ModelError):
    code = "model_not_found"
    status = 404
    type = "invalid_request_error"


class ModelIntegrityError(ModelError):
    code = "model_integrity_error"


class AuthError(StreamscribeError):
    code = "invalid_api_key"
    status = 401
    type = "authentication_error"


class InvalidRequest(StreamscribeError):
    code = "invalid_request_error"
    status = 400
    type = "invalid_request_error"


class InvalidParameter(InvalidRequest):
    code = "invalid_parameter"


class AudioDecodeError(InvalidRequest):
    code = "audio_decode_error"


class AudioTooLong(InvalidRequest):
    code = "audio_too_long"


class FileTooLarge(InvalidRequest):
    code = "file_too_large"
    status = 413


class UrlRefused(InvalidRequest):
    code = "url_not_allowed"


class UploadTimeout(StreamscribeError):
    code = "upload_timeout"
    status = 408
    type = "invalid_request_error"


class ProtocolError(StreamscribeError):
    code = "protocol_error"
    status = 400
    type = "invalid_request_error"


class Overloaded(StreamscribeError):
    code = "server_overloaded"
    status = 503


class TranscriptionError(StreamscribeError):
    code = "transcription_failed"
