"""Deepgram-compatible live streaming at /v1/listen (being built)."""


def routes() -> list:
    return []


def active_streams(app) -> int:
    return 0
