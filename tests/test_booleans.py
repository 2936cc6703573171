"""One set of boolean spellings for the environment, query parameters and form fields."""

from __future__ import annotations

import pytest

from streaming.booleans import parse_bool
from streaming.config import ServerConfig
from streaming.errors import ConfigError, InvalidParameter
from streaming.protocols import deepgram


@pytest.mark.parametrize("raw, value", [("true", True), (" TRUE ", True), ("1", True),
                                        ("yes", True), ("on", True), ("false", False),
                                        ("0", False), ("No", False), ("off", False)])
def test_accepted_spellings(raw: str, value: bool) -> None:
    assert parse_bool(raw) is value


@pytest.mark.parametrize("raw", ["", "treu", "2", "y"])
def test_anything_else_is_refused(raw: str) -> None:
    with pytest.raises(ValueError):
        parse_bool(raw)


def test_a_misspelt_environment_boolean_is_a_config_error_not_false() -> None:
    assert ServerConfig.from_env({"STREAMSCRIBE_MODEL_CALIBRATE": "off"}).model.calibrate is False
    with pytest.raises(ConfigError, match="STREAMSCRIBE_MODEL_CALIBRATE"):
        ServerConfig.from_env({"STREAMSCRIBE_MODEL_CALIBRATE": "flase"})


def test_query_booleans_use_the_same_spellings() -> None:
    assert deepgram.parse_query({"interim_results": "yes"}).interim_results is True
    with pytest.raises(InvalidParameter) as caught:
        deepgram.parse_query({"vad_events": "maybe"})
    assert caught.value.param == "vad_events"
