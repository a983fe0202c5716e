"""``python -m mission_widgets``: the ``mission-widgets`` command line."""

from mission_widgets.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
