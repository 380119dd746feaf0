"""Command-line tools: one module per tool, each with main(argv=None) returning an exit code."""
