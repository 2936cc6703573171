"""Start WhisperLive's server bound to 127.0.0.1. Runs inside the peer's own virtual
environment (see peer.py), so it imports nothing from this project.

usage: python peer_server.py PORT MODEL_DIR MAX_CLIENTS
"""

import logging
import sys

from whisper_live.server import TranscriptionServer

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(threadName)s %(message)s",
                    force=True)
port, model_dir, max_clients = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
TranscriptionServer().run("127.0.0.1", port=port, backend="faster_whisper",
                          faster_whisper_custom_model_path=model_dir, single_model=True,
                          max_clients=max_clients, max_connection_time=3600)
