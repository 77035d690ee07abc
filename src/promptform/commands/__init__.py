"""One module per subcommand: plain functions that take options and return an exit code."""
