"""CLI commands, one module each, so they grow without touching one big file.

Each module defines ``register(commands, train)``: ``commands`` is the top-level
``saliency-rl`` subparsers object, ``train`` the subparsers of ``saliency-rl train``
(add ``train sac``, ``train bc`` there). ``saliency_rl.cli.build_parser`` calls every
module's ``register`` in name order. Keep imports of torch and friends inside the
handlers, so ``saliency-rl --help`` stays fast. Shared argument helpers
(``positive_int``, ``add_env_options``, ``Parser``) live in ``saliency_rl.cli``.
"""
