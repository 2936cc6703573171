"""Language codes Whisper knows, and parsing of client language parameters."""

from __future__ import annotations

from faster_whisper.tokenizer import _LANGUAGE_CODES

from .errors import InvalidParameter

WHISPER_LANGUAGES = frozenset(_LANGUAGE_CODES)
AUTO = ("multi", "auto")


def parse_language(value: str | None, param: str = "language") -> str | None:
    """'en', 'en-US', 'EN' -> 'en'; 'multi'/'auto'/'' -> None (detect)."""
    if value is None or value.strip().lower() in (*AUTO, ""):
        return None
    code = value.strip().lower().replace("_", "-").split("-")[0]
    if code not in WHISPER_LANGUAGES:
        raise InvalidParameter(
            f"{param}={value!r} is not a language the model knows (ISO 639-1 code, or 'multi')",
            param=param)
    return code
