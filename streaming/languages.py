"""Language codes Whisper knows, parsing of client language parameters, and language names.

OpenAI's `verbose_json` gives `"language": "english"`, not `"en"`; the batch API renders
names with `name_of` and the remote backend reads them back with `code_of`.
"""

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

NAMES: dict[str, str] = {
    "en": "english", "zh": "chinese", "de": "german", "es": "spanish", "ru": "russian",
    "ko": "korean", "fr": "french", "ja": "japanese", "pt": "portuguese", "tr": "turkish",
    "pl": "polish", "ca": "catalan", "nl": "dutch", "ar": "arabic", "sv": "swedish",
    "it": "italian", "id": "indonesian", "hi": "hindi", "fi": "finnish", "vi": "vietnamese",
    "he": "hebrew", "uk": "ukrainian", "el": "greek", "ms": "malay", "cs": "czech",
    "ro": "romanian", "da": "danish", "hu": "hungarian", "ta": "tamil", "no": "norwegian",
    "th": "thai", "ur": "urdu", "hr": "croatian", "bg": "bulgarian", "lt": "lithuanian",
    "la": "latin", "mi": "maori", "ml": "malayalam", "cy": "welsh", "sk": "slovak",
    "te": "telugu", "fa": "persian", "lv": "latvian", "bn": "bengali", "sr": "serbian",
    "az": "azerbaijani", "sl": "slovenian", "kn": "kannada", "et": "estonian",
    "mk": "macedonian", "br": "breton", "eu": "basque", "is": "icelandic", "hy": "armenian",
    "ne": "nepali", "mn": "mongolian", "bs": "bosnian", "kk": "kazakh", "sq": "albanian",
    "sw": "swahili", "gl": "galician", "mr": "marathi", "pa": "punjabi", "si": "sinhala",
    "km": "khmer", "sn": "shona", "yo": "yoruba", "so": "somali", "af": "afrikaans",
    "oc": "occitan", "ka": "georgian", "be": "belarusian", "tg": "tajik", "sd": "sindhi",
    "gu": "gujarati", "am": "amharic", "yi": "yiddish", "lo": "lao", "uz": "uzbek",
    "fo": "faroese", "ht": "haitian creole", "ps": "pashto", "tk": "turkmen", "nn": "nynorsk",
    "mt": "maltese", "sa": "sanskrit", "lb": "luxembourgish", "my": "myanmar", "bo": "tibetan",
    "tl": "tagalog", "mg": "malagasy", "as": "assamese", "tt": "tatar", "haw": "hawaiian",
    "ln": "lingala", "ha": "hausa", "ba": "bashkir", "jw": "javanese", "su": "sundanese",
    "yue": "cantonese",
}
CODES: dict[str, str] = {name: code for code, name in NAMES.items()}


def name_of(code: str) -> str:
    """"en" -> "english"; an unknown code is returned unchanged."""
    return NAMES.get(code, code)


def code_of(name_or_code: str) -> str:
    """"english" or "en" -> "en" (what a remote server put in `language`)."""
    value = name_or_code.strip().lower()
    return value if value in NAMES else CODES.get(value, value)


def parse_language_set(value: str | None) -> tuple[str | None, tuple[str, ...] | None]:
    """The batch `language` parameter: a code, `auto`/empty (detect), or "en,de" (detect among
    these only, our extension). Returns (language, languages) as `TranscribeOptions` takes them.
    """
    parts = [p for p in (value or "").split(",") if p.strip()]
    codes = tuple(dict.fromkeys(code for p in parts
                                if (code := parse_language(p, "language")) is not None))
    if len(codes) <= 1 or len(codes) < len(parts):
        # One code; or "auto" mixed into a set, which means detect among all.
        return (codes[0] if len(codes) == 1 and len(parts) == 1 else None), None
    return None, codes
