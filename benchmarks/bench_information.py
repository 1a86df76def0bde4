"""Time I_q(x; z) (vaelab.evaluation.information) on 10,000 posteriors, as the study measures it.

    python benchmarks/bench_information.py [--n 10000] [--z-dims 1,2,5,10,20]

Prints the wall time of one estimate per z_dim (10,000 x 10,000 log densities, one draw per
image) and torch's CPU capability; the machine may be shared, so read the times as approximate.
"""

from __future__ import annotations

import argparse
import time

import torch

from vaelab.evaluation.information import information


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--z-dims", default="1,2,5,10,20")
    args = parser.parse_args(argv)
    print(f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}, "
          f"{torch.get_num_threads()} threads")
    for z_dim in (int(z) for z in args.z_dims.split(",")):
        generator = torch.Generator().manual_seed(z_dim)
        mu = torch.randn(args.n, z_dim, generator=generator)
        logvar = torch.randn(args.n, z_dim, generator=generator) - 2
        started = time.perf_counter()
        found = information(mu, logvar)
        print(f"z_dim {z_dim:>3}: {time.perf_counter() - started:.2f} s "
              f"(I_q {found.i_q:.3f} of at most {found.ceiling:.3f} nats)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
