"""``python -m mcodec``: the same command line as ``mcodec``."""

from mcodec.cli.main import main

main(prog_name="mcodec")
