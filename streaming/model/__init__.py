"""The model layer: the `Transcriber` interface, its backends, weights, and the scheduler
that shares one loaded model between every stream and request."""
