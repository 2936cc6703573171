"""Wire protocols: each module parses client messages and encodes server events, nothing else."""
