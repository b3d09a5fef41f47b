"""PyAV, imported on first use: image-only work (training on a GPU machine without PyAV, say) never needs
it."""

from __future__ import annotations


def load_av():
    """The ``av`` module, with ffmpeg's own log lines off: they would reach stderr through Python logging,
    and our errors say what went wrong."""
    import av

    av.logging.set_level(None)
    return av
