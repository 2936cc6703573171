"""The sans-I/O live core: segmenter, per-connection session, partial agreement, events.

Nothing here touches a socket, a thread or a clock; time is counted in samples.
"""
