"""The `slr` command line: one subcommand per job, each importing its room lazily (so `slr serve`
never imports torch)."""
