"""CLI commands, one module each, so they grow without touching one big file.

Each module defines ``register(commands, train)``: ``commands`` is the top-level
``saliency-rl`` subparsers object, ``train`` the subparsers of ``saliency-rl train``
(add ``train sac``, ``train bc`` there). ``saliency_rl.cli.build_parser`` calls every
module's ``register`` in the order of ``cli.COMMANDS`` (add a new module there). Keep
imports of torch and friends inside the handlers, so ``saliency-rl --help`` stays fast; options read off a config class whose module
imports torch are added on first use (``Parser.add_options_later``). The argument helpers
the commands share (``positive_int``, ``add_env_options``, ``add_run_options``,
``add_dataclass_options``, ``Parser``) live in ``commands.args``.
"""
