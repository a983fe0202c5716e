"""Entry point of worker processes: ``python -m mission_widgets.worker STORE_DIR MISSION_ID``."""

from mission_widgets.runtime.worker import main

if __name__ == "__main__":
    main()
