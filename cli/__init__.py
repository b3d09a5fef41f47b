"""The ``mcodec`` command line (click), a thin shell over ``mcodec.api``."""
