"""ccswitch: run Claude Code against any model provider, one word to switch."""

__version__ = "0.1.0"
