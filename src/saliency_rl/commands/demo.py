"""``saliency-rl demo``: ViSaRL's Algorithm 1 end to end on a small default task."""

from __future__ import annotations

import argparse

from saliency_rl.commands.args import add_run_options, non_negative_int, positive_int


def cmd_demo(args: argparse.Namespace) -> None:
    from saliency_rl.experiments.demo import run_demo

    run_demo(
        args.out,
        preset=args.preset,
        scale=args.scale,
        annotate=args.annotate,
        port=args.port,
        device=args.device,
        progress=not args.no_progress,
        env_spec=args.env,
        seed=args.seed,
        annotate_frames=args.annotate_frames,
        collect_episodes=args.episodes,
        distractor=args.distractor,
        until=args.until,
    )


def register(commands: argparse._SubParsersAction, train: argparse._SubParsersAction) -> None:
    demo = commands.add_parser(
        "demo",
        help="run the whole ViSaRL pipeline end to end on a small default task",
        description="Collect frames with a random policy, annotate 10 (oracle, or you in the "
        "browser), train the saliency predictor, label the dataset, pretrain MultiMAE on "
        "(RGB, saliency), train SAC on the frozen features, evaluate clean and under a "
        "distractor, and write a report (OUT/report/index.html). The default budget takes "
        "under 15 minutes on 2 CPU cores. Run the same command again to continue an "
        "interrupted demo: finished stages are skipped.",
    )
    demo.add_argument(
        "--preset",
        choices=("cpu", "paper", "tiny"),
        default="cpu",
        help="budgets: cpu (default, minutes on a laptop CPU), paper (ViSaRL's settings, "
        "for a GPU: hours), tiny (seconds, a smoke test)",
    )
    demo.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiply every budget (episodes, training steps, evaluation episodes) by this",
    )
    demo.add_argument(
        "--annotate",
        choices=("oracle", "browser"),
        default="oracle",
        help="oracle (default): the simulator clicks the task's bodies; browser: you click, "
        "on a local web page the demo opens and waits on",
    )
    demo.add_argument(
        "--port", type=non_negative_int, default=8765, help="port of --annotate browser (8765)"
    )
    demo.add_argument("--env", help="task spec (default: dmc:cartpole-swingup)")
    demo.add_argument("--episodes", type=positive_int, help="episodes to collect (preset's)")
    demo.add_argument("--annotate-frames", type=positive_int, help="frames to annotate (10)")
    demo.add_argument(
        "--distractor",
        choices=("color_easy", "color_hard", "video_easy", "video_hard"),
        help="distractor of the robustness evaluation (color_hard)",
    )
    demo.add_argument("--seed", type=non_negative_int, help="random seed (0)")
    demo.add_argument(
        "--until",
        choices=("collect", "annotate", "predictor", "label", "pretrain", "sac", "evaluate"),
        help="stop after this stage (sweeps use --until pretrain to prepare a task's "
        "predictor and MultiMAE: OUT/predictor, OUT/multimae)",
    )
    add_run_options(demo, out="output directory (default: runs/demo; run again to continue)")
    demo.set_defaults(handler=cmd_demo)
