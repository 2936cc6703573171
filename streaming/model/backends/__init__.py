"""Transcriber backends: local faster-whisper, a remote OpenAI-compatible pool, a fake for tests."""
