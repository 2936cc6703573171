"""The application state every endpoint reads: config and the shared model engine.

One module, imported one way (endpoints → state), so the app module can import the
endpoints without a cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.requests import HTTPConnection

from ..config import ServerConfig
from ..model.calibration import Headroom
from ..model.engine import Engine
from .lifecycle import Lifecycle
from .metrics import Metrics


@dataclass
class AppState:
    config: ServerConfig
    engine: Engine
    lifecycle: Lifecycle = field(default_factory=Lifecycle)
    headroom: Headroom | None = None      # measured at start-up (None: not measured)
    metrics: Metrics = field(init=False)

    def __post_init__(self) -> None:
        self.metrics = Metrics(self.lifecycle, self.engine)


def state_of(connection: HTTPConnection) -> AppState:
    """The state of the app serving this request or WebSocket."""
    state: AppState = connection.app.state.streamscribe
    return state
