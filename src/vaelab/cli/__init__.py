"""The command-line interface: ``main(argv) -> int``; each command lives in its own module."""
