"""The ``updl`` subcommands, one module per family; importing a module registers its commands on the group."""
