"""`semcode index --ray`: the CLI's glue over the Ray job (``ray_index``, launched through its entry point only)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from semcode.interrupts import raising

from .cli_output import ProgressDisplay, print_report

if TYPE_CHECKING:
    from semcode import Settings


def index_on_ray(args: argparse.Namespace, settings: Settings) -> int:
    """`index --ray`: the repositories into one index on a Ray cluster (ray_index, launched through its entry
    point only). Exit 1 when a repository could not be indexed (the others are)."""
    from ray_index.job import run

    paths, address = list(args.paths), args.ray
    if address not in (None, "local", "auto") and Path(address).is_dir():  # `--ray REPO`: a folder, not an address
        paths, address = [Path(address), *paths], "local"
    if args.rebuild:
        raise ValueError("--rebuild does not go with --ray: delete the index first (semcode forget)")
    display = ProgressDisplay(args.quiet or args.json)
    try:
        with raising():
            job = run(paths, settings, address=address, repos_file=args.repos,
                      progress=lambda p: display.update(Path("ray"), p))  # fmt: skip
    except KeyboardInterrupt:
        print("\nsemcode: interrupted; what was committed stays: run the same command to finish", file=sys.stderr)
        return 130
    finally:
        display.close()
    if args.json:
        print(json.dumps(dataclasses.asdict(job) | {"tokens_per_second": job.tokens_per_second}))
    for repo in [] if args.json else job.repos:
        if repo.report is not None:
            print_report(Path(repo.root), job.index_dir, repo.report)
        if repo.status != "indexed":
            print(f"{repo.root}: {repo.status}: {repo.reason}")
    if not args.json:
        print(
            f"ray: {job.chunks_encoded} chunks encoded by {job.actors} actor(s) at {job.tokens_per_second:.0f} tok/s, "
            f"{job.commits} write batches, {sum(job.versions.values())} table versions kept; {job.seconds:.1f} s"
        )
    return 1 if any(r.status == "failed" for r in job.repos) else 0
