"""Execute Jupyter notebooks headless with nbclient, the way CI does (scripts/notebooks.sh).

    python notebooks/run.py [--results DIR] [--timeout S] [--output-dir DIR] NOTEBOOK...
    python notebooks/run.py --clear NOTEBOOK...

Each notebook runs top to bottom in a fresh kernel of this interpreter (its venv), with the
notebook's folder as working directory, matplotlib's Agg backend and PWS_RESULTS (the
`pws-analyze -o` dataset) in the environment. A cell error, a notebook over its time budget or a
dead kernel prints which notebook and cell failed, with the error and its traceback, and makes
the exit status 1; the other notebooks still run. Notebooks are committed without outputs: one
that holds any fails the run too (`--clear` strips them in place). The notebooks on disk are never
changed by a run; `--output-dir` keeps executed copies (outputs included, failed ones too) and
the figures as PNG.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from traitlets.config import Config

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
KERNEL = "pws-notebooks"
TIMEOUT = "NotebookTimeout"


def plain(text: str) -> str:
    return ANSI.sub("", text)


def install_kernelspec(where: Path) -> None:
    """A kernelspec of its own, so the kernel is this interpreter whatever else is installed."""
    spec = where / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-Xfrozen_modules=off", "-m", "ipykernel_launcher",
                         "-f", "{connection_file}"],
                "display_name": f"Python {sys.version_info[0]}.{sys.version_info[1]} (pws notebooks)",
                "language": "python",
                "env": {"MPLBACKEND": "Agg", "PYDEVD_DISABLE_FILE_VALIDATION": "1"},
            }
        )
    )
    os.environ["JUPYTER_PATH"] = os.pathsep.join(
        [str(where)] + [p for p in os.environ.get("JUPYTER_PATH", "").split(os.pathsep) if p]
    )


def stored_outputs(nb: nbformat.NotebookNode) -> list[int]:
    """Indices of the code cells that hold outputs or an execution count."""
    return [
        i
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count") is not None)
    ]


def clear(nb: nbformat.NotebookNode) -> None:
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        for key in ("execution", "collapsed", "scrolled", "ExecuteTime"):
            cell.metadata.pop(key, None)
    nb.metadata.pop("widgets", None)


def describe_cell(nb: nbformat.NotebookNode, index: int) -> str:
    cell = nb.cells[index]
    first = next((line for line in cell.source.splitlines() if line.strip()), "")
    return f"cell {index + 1} of {len(nb.cells)} (id {cell.get('id', '?')}): {first[:80]!r}"


def run_one(path: Path, timeout: float, output_dir: Path | None, sockets: Path) -> tuple[bool, str]:
    """Executes one notebook; returns (ok, message)."""
    nb = nbformat.read(path, as_version=4)
    # Local sockets (not TCP on localhost) between this process and the kernel.
    sockets_config = Config({"KernelManager": {"transport": "ipc", "ip": str(sockets / path.stem)}})
    running: dict[str, int] = {}

    def on_cell_start(cell, cell_index, **_kwargs):
        running["index"] = cell_index

    # The budget is the notebook's: each cell may use what the cells before it left.
    deadline = time.monotonic() + timeout
    client = NotebookClient(
        nb,
        timeout_func=lambda _cell: max(deadline - time.monotonic(), 0.1),
        # On timeout, interrupt the cell (the kernel then shuts down cleanly) and fail with this.
        interrupt_on_timeout=True,
        error_on_timeout={"ename": TIMEOUT, "evalue": "", "traceback": []},
        startup_timeout=min(timeout, 120),
        config=sockets_config,
        kernel_name=KERNEL,
        resources={"metadata": {"path": str(path.parent)}},
        on_cell_start=on_cell_start,
    )

    def running_cell(fallback: str) -> str:
        return describe_cell(nb, running["index"]) if "index" in running else fallback

    ok, message = False, ""
    try:
        asyncio.run(client.async_execute())
        ok = True
    except CellExecutionError as err:
        if err.ename == TIMEOUT:
            message = f"did not finish within {timeout:g} s (PWS_NOTEBOOK_TIMEOUT); it was running " + running_cell("?")
        else:
            index = next(
                (i for i, cell in enumerate(nb.cells)
                 if any(o.get("output_type") == "error" for o in cell.get("outputs", []))),
                running.get("index"),
            )
            where = describe_cell(nb, index) if index is not None else "a cell"
            message = f"{where} raised {err.ename}: {plain(err.evalue)}\n\n{plain(str(err))}"
    except (TimeoutError, CellTimeoutError):
        message = f"did not finish within {timeout:g} s (PWS_NOTEBOOK_TIMEOUT), in " + running_cell("kernel start-up")
    except DeadKernelError as err:
        message = f"the kernel died while running {running_cell('?')}: {plain(str(err))}"
    except Exception as err:  # a kernel that does not start, an unreadable notebook, …
        message = f"{type(err).__name__}: {plain(str(err))}"
    if output_dir is not None:
        output_dir.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, output_dir / path.name)
    return ok, message


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--results", type=Path, help="the pws-analyze dataset (default: $PWS_RESULTS)")
    parser.add_argument("--timeout", type=float, default=float(os.environ.get("PWS_NOTEBOOK_TIMEOUT", 300)),
                        help="seconds each notebook may take, all cells together (default 300, $PWS_NOTEBOOK_TIMEOUT)")
    parser.add_argument("--output-dir", type=Path,
                        help="write the executed notebooks here, and their figures under figures/")
    parser.add_argument("--clear", action="store_true", help="strip outputs in place instead of running")
    args = parser.parse_args()

    if args.clear:
        for path in args.notebooks:
            nb = nbformat.read(path, as_version=4)
            clear(nb)
            nbformat.write(nb, path)
            print(f"cleared {path}")
        return 0

    if args.results is not None:
        os.environ["PWS_RESULTS"] = str(args.results.resolve())
    if not os.environ.get("PWS_RESULTS"):
        print("run.py: no dataset: pass --results DIR or set PWS_RESULTS (a `pws-analyze -o` directory)",
              file=sys.stderr)
        return 2
    if args.output_dir is not None:
        args.output_dir = args.output_dir.resolve()
        os.environ["PWS_FIGURES"] = str(args.output_dir / "figures")
    print(f"run.py: dataset {os.environ['PWS_RESULTS']}; {args.timeout:g} s per notebook", flush=True)

    failures = []
    with tempfile.TemporaryDirectory(prefix="pws-kernelspec-") as spec_dir:
        install_kernelspec(Path(spec_dir))
        for path in args.notebooks:
            path = path.resolve()
            name = path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path
            dirty = stored_outputs(nbformat.read(path, as_version=4))
            started = time.monotonic()
            ok, message = run_one(path, args.timeout, args.output_dir, Path(spec_dir))
            took = time.monotonic() - started
            if ok:
                print(f"ok    {name} ({took:.1f} s)", flush=True)
            else:
                failures.append(name)
                print(f"FAIL  {name} ({took:.1f} s): {message}", file=sys.stderr, flush=True)
            if dirty:
                failures.append(name)
                print(
                    f"FAIL  {name}: committed with outputs in cells {', '.join(str(i + 1) for i in dirty)}; "
                    f"clear them: {sys.executable} notebooks/run.py --clear {name}",
                    file=sys.stderr,
                    flush=True,
                )
    if failures:
        print(f"run.py: {len(set(failures))} of {len(args.notebooks)} notebook(s) failed", file=sys.stderr)
        return 1
    print(f"run.py: {len(args.notebooks)} notebook(s) ran without error")
    return 0


if __name__ == "__main__":
    sys.exit(main())
