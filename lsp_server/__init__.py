"""semcode language server (a later issue); today: the console entry point `semcode` (cli.py)."""
