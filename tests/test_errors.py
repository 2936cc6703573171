"""The error tree's shared helpers: OpenAI error bodies and the English-only model check."""

from __future__ import annotations

import json

import pytest

from streaming.errors import InvalidParameter, ModelNotFound, StreamscribeError
from streaming.model.transcriber import ModelInfo


def test_an_openai_error_body_becomes_the_error_it_describes() -> None:
    body = json.dumps({"error": {"message": "no such model", "type": "invalid_request_error",
                                 "param": "model", "code": "model_not_found"}})
    error = ModelNotFound.from_openai(body, 404, "remote server: ")
    assert isinstance(error, ModelNotFound)
    assert (error.message, error.code, error.param, error.status) == (
        "remote server: no such model", "model_not_found", "model", 404)
    assert error.to_openai()["error"]["message"] == "remote server: no such model"


@pytest.mark.parametrize("body", ["", "<html>502</html>", '{"error": "flat string"}',
                                  '{"detail": "not ours"}', '{"error": {"code": "x"}}'])
def test_anything_else_is_not_an_openai_error_body(body: str) -> None:
    assert StreamscribeError.from_openai(body, 500) is None


def test_an_english_only_model_refuses_other_languages_by_name() -> None:
    english = ModelInfo("tiny.en", multilingual=False, backend="fake")
    english.check_language(None)        # detection on an English model: English
    english.check_language("en")
    with pytest.raises(InvalidParameter) as caught:
        english.check_language("de")
    assert caught.value.param == "language" and "tiny.en" in caught.value.message
    ModelInfo("base", multilingual=True, backend="fake").check_language("de")
