"""CDK entry point: ``cdk.json`` runs ``python3 infra/app.py`` from the repository root.

``python3`` may not be the project's virtualenv (the CDK CLI runs whatever is first on PATH);
when aws-cdk-lib is missing there, the app re-runs itself with ``.venv/bin/python``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
VENV_PYTHON = REPO_ROOT / ".venv" / "bin" / "python"


def _use_project_environment() -> None:
    """Import from the repository root, not from infra/, under a Python that has the deps."""
    script_dir = str(Path(__file__).resolve().parent)
    sys.path[:] = [path for path in sys.path if path != script_dir]
    sys.path.insert(0, str(REPO_ROOT))
    try:
        import aws_cdk  # noqa: F401
    except ModuleNotFoundError:
        if VENV_PYTHON.exists() and Path(sys.prefix).resolve() != VENV_PYTHON.parent.parent:
            os.execv(VENV_PYTHON, [str(VENV_PYTHON), __file__, *sys.argv[1:]])
        sys.exit("scavenger infra: aws-cdk-lib is not installed; run `make setup` first")


def main() -> None:
    _use_project_environment()
    import aws_cdk as cdk

    from infra.stack import build
    from scavenger.errors import ConfigError

    app = cdk.App()
    try:
        build(app)
    except ConfigError as exc:
        sys.exit(f"scavenger infra: {exc}")
    app.synth()


if __name__ == "__main__":
    main()
