"""The HTTP/WebSocket application: one port for streaming, batch, health and pages."""
