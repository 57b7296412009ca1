"""One module per ``atm`` subcommand."""
