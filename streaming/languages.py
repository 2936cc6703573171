"""Language codes Whisper knows, parsing of client language parameters, and language names.

OpenAI's `verbose_json` gives `"language": "english"`, not `"en"`; the batch API renders
names with `name_of` and the remote backend reads them back with `code_of`.
"""

from __future__ import annotations

from faster_whisper.tokenizer import _LANGUAGE_CODES

from .errors import InvalidParameter

WHISPER_LANGUAGES = frozenset(_LANGUAGE_CODES)
AUTO = ("multi", "auto")


# BCP 47 subtags accepted after the language: ISO 3166-1 regions (as in the tz database's
# iso3166.tab), UN M.49 areas clients use (es-419), and the scripts Whisper's languages use.
REGIONS = frozenset("""
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ
    BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM
    DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS
    GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN
    KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ
    MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM
    PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV
    SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI
    VN VU WF WS YE YT ZA ZM ZW
""".split())
AREAS = frozenset({"001", "150", "419"})
SCRIPTS = frozenset({"latn", "cyrl", "arab", "hans", "hant", "deva", "beng", "guru", "gujr",
                     "taml", "telu", "knda", "mlym", "sinh", "thai", "laoo", "khmr", "mymr",
                     "tibt", "ethi", "geor", "armn", "hebr", "grek", "jpan", "kore", "mong"})


def parse_language(value: str | None, param: str = "language") -> str | None:
    """'en', 'en-US', 'zh-Hant-TW', 'EN' -> the Whisper code; 'multi'/'auto'/'' -> None
    (detect). Raises InvalidParameter for a language Whisper lacks or an unknown script or
    region ('en-ZZ')."""
    if value is None or value.strip().lower() in (*AUTO, ""):
        return None
    code, *subtags = value.strip().lower().replace("_", "-").split("-")
    if code not in WHISPER_LANGUAGES:
        raise InvalidParameter(
            f"{param}={value!r} is not a language the model knows (ISO 639-1 code, or 'multi')",
            param=param)
    if subtags and subtags[0] in SCRIPTS:
        subtags = subtags[1:]
    if len(subtags) > 1 or (subtags and subtags[0].upper() not in REGIONS
                            and subtags[0] not in AREAS):
        raise InvalidParameter(
            f"{param}={value!r}: {'-'.join(subtags)!r} is not a region (ISO 3166-1, e.g. "
            "en-US) or script (e.g. zh-Hant) code", param=param)
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
