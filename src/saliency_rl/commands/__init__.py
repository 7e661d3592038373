"""CLI commands, one module each, so they grow without touching one big file.

A command module holds ``HELP`` (its line in ``saliency-rl --help``), ``DESCRIPTION``,
``add_options(parser)`` and ``run(args)``; it may hold ``PARSER`` (more ``add_parser``
keywords). ``saliency_rl.cli.build_parser`` makes each one's parser in the order of
``cli.COMMANDS`` (add a new command there) and adds its options on first use, so
``saliency-rl --help`` stays fast: keep imports of torch and friends inside ``run`` and
``add_options``. The argument helpers the commands share (``positive_int``,
``add_env_options``, ``add_run_options``, ``add_dataclass_options``, ``Parser``) live in
``commands.args``.
"""
